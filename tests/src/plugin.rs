//! Finding the plugin cargo built for this test run.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::PathBuf;

/// The plugin library: `$MOONSHOT_PLUGIN_PATH` when set, else the one cargo
/// built beside this test binary (`target/<profile>/deps`) or one level up.
pub fn plugin_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MOONSHOT_PLUGIN_PATH") {
        return PathBuf::from(path);
    }
    let file = format!("{DLL_PREFIX}moonshot_provider{DLL_SUFFIX}");
    let exe = std::env::current_exe().expect("test binary path");
    let mut dir = exe.parent().map(PathBuf::from);
    while let Some(d) = dir {
        let candidate = d.join(&file);
        if candidate.exists() {
            return candidate;
        }
        if d.file_name().is_some_and(|n| n == "target") {
            break;
        }
        dir = d.parent().map(PathBuf::from);
    }
    panic!(
        "{file} not found beside {}; build it with `cargo build -p moonshot-provider`",
        exe.display()
    );
}
