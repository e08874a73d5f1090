//! Loading the provider library at run time and calling its C table safely.
//!
//! This is what any Rust host would write: dlopen, negotiate the version,
//! wrap the raw table in owned types whose Drop calls destroy / release /
//! free_string, and bridge the C callbacks to a Rust channel.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use moonshot_abi::{
    MoonshotApi, MoonshotCallbacks, MoonshotFlow, MoonshotGetApi, MoonshotInstance,
    MoonshotRequest, MoonshotStatus, MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR, MOONSHOT_CONTINUE,
    MOONSHOT_ENTRY_SYMBOL, MOONSHOT_OK, MOONSHOT_PENDING, MOONSHOT_STOP,
};

/// The loaded library and its table. Never unloaded (see the header): the
/// library is leaked on purpose once loaded.
pub struct Plugin {
    api: &'static MoonshotApi,
    pub path: PathBuf,
}

// SAFETY: the table is static and immutable, and the header allows its
// functions on any thread.
unsafe impl Send for Plugin {}
// SAFETY: as for Send: nothing in a Plugin is mutated after loading.
unsafe impl Sync for Plugin {}

/// The library file name on this platform.
pub fn library_file_name() -> String {
    format!(
        "{}moonshot_provider{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Where cargo puts the library beside this executable: the same directory
/// (a `cargo build` of the plugin) or its `deps/` (built as a dependency).
pub fn default_library_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join(library_file_name()),
        dir.join("deps").join(library_file_name()),
    ]
    .into_iter()
    .find(|p| p.exists())
}

impl Plugin {
    pub fn load(path: &Path) -> Result<Plugin, String> {
        // SAFETY: loading runs the library's initialisers; ours start nothing.
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        // SAFETY: the symbol has the header's MoonshotGetApi signature.
        let api = unsafe {
            let entry: libloading::Symbol<MoonshotGetApi> = library
                .get(MOONSHOT_ENTRY_SYMBOL)
                .map_err(|e| format!("{} has no moonshot_get_api: {e}", path.display()))?;
            entry(MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR)
        };
        if api.is_null() {
            return Err(format!(
                "{} does not serve ABI major {MOONSHOT_ABI_MAJOR}",
                path.display()
            ));
        }
        // SAFETY: non-NULL tables are static for the library's lifetime,
        // which we make 'static by never unloading it.
        let api: &'static MoonshotApi = unsafe { &*api };
        if api.struct_size < std::mem::size_of::<MoonshotApi>()
            || api.abi_major != MOONSHOT_ABI_MAJOR
        {
            return Err(format!(
                "{} has an older, smaller table than this host needs",
                path.display()
            ));
        }
        std::mem::forget(library);
        Ok(Plugin {
            api,
            path: path.to_path_buf(),
        })
    }

    /// "name version" of the loaded plugin.
    pub fn describe(&self) -> String {
        // SAFETY: static NUL-terminated strings per the header.
        let (name, version) = unsafe {
            (
                CStr::from_ptr(self.api.plugin_name),
                CStr::from_ptr(self.api.plugin_version),
            )
        };
        format!(
            "{} {} (ABI {}.{})",
            name.to_string_lossy(),
            version.to_string_lossy(),
            self.api.abi_major,
            self.api.abi_minor
        )
    }

    pub fn api(&self) -> &'static MoonshotApi {
        self.api
    }

    /// `create`: an instance from a provider config, or the error JSON.
    pub fn create(&self, config_json: &str) -> Result<Instance, String> {
        let config =
            CString::new(config_json).map_err(|_| "config holds a NUL byte".to_string())?;
        let mut instance = std::ptr::null_mut();
        let mut error = std::ptr::null_mut();
        // SAFETY: valid pointers for the call's duration.
        let status = unsafe { (self.api.create)(config.as_ptr(), &mut instance, &mut error) };
        if status != MOONSHOT_OK {
            return Err(self
                .take_string(error)
                .unwrap_or_else(|| format!("create failed with status {status}")));
        }
        Ok(Instance {
            api: self.api,
            raw: instance,
        })
    }

    fn take_string(&self, ptr: *mut c_char) -> Option<String> {
        take_string(self.api, ptr)
    }
}

/// Copies and frees a plugin-owned string.
fn take_string(api: &MoonshotApi, ptr: *mut c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the plugin returned a NUL-terminated string we now own.
    let text = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: freed exactly once, through the plugin.
    unsafe { (api.free_string)(ptr) };
    Some(text)
}

/// A provider instance; destroyed on drop.
pub struct Instance {
    api: &'static MoonshotApi,
    raw: *mut MoonshotInstance,
}

// SAFETY: the header allows every call on an instance from any thread.
unsafe impl Send for Instance {}
// SAFETY: the queries and `complete` may run concurrently (header); only
// `destroy` may not, and it runs in Drop, which has the instance alone.
unsafe impl Sync for Instance {}

/// What a request reports, in order, on the channel.
#[derive(Debug)]
pub enum Event {
    Part(String),
    Done(MoonshotStatus, String),
}

/// The per-request state the C callbacks reach through `user_data`.
struct Bridge {
    events: mpsc::Sender<Event>,
    stop_after_parts: Option<usize>,
    parts: usize,
}

unsafe extern "C" fn on_chunk(
    user_data: *mut c_void,
    json: *const c_char,
    len: usize,
) -> MoonshotFlow {
    // SAFETY: user_data is the Bridge we boxed in `complete`, alive until
    // on_done; the plugin never runs two callbacks of a request at once.
    let bridge = unsafe { &mut *(user_data as *mut Bridge) };
    // SAFETY: the header: `json` holds `len` bytes, borrowed for this call.
    let bytes = unsafe { std::slice::from_raw_parts(json as *const u8, len) };
    let _ = bridge
        .events
        .send(Event::Part(String::from_utf8_lossy(bytes).into_owned()));
    bridge.parts += 1;
    match bridge.stop_after_parts {
        Some(n) if bridge.parts >= n => MOONSHOT_STOP,
        _ => MOONSHOT_CONTINUE,
    }
}

unsafe extern "C" fn on_done(
    user_data: *mut c_void,
    status: MoonshotStatus,
    json: *const c_char,
    len: usize,
) {
    // SAFETY: on_done is the last use of user_data: take the Bridge back.
    let bridge = unsafe { Box::from_raw(user_data as *mut Bridge) };
    // SAFETY: the header: `json` holds `len` bytes, borrowed for this call.
    let bytes = unsafe { std::slice::from_raw_parts(json as *const u8, len) };
    let _ = bridge.events.send(Event::Done(
        status,
        String::from_utf8_lossy(bytes).into_owned(),
    ));
}

impl Instance {
    fn query(
        &self,
        f: unsafe extern "C" fn(*const MoonshotInstance, *mut *mut c_char) -> MoonshotStatus,
    ) -> String {
        let mut out = std::ptr::null_mut();
        // SAFETY: live instance, valid out pointer.
        let status = unsafe { f(self.raw, &mut out) };
        assert_eq!(status, MOONSHOT_OK, "query failed");
        take_string(self.api, out).unwrap_or_default()
    }

    pub fn models(&self) -> String {
        self.query(self.api.models)
    }

    pub fn list(&self) -> String {
        self.query(self.api.list)
    }

    pub fn default_model(&self) -> String {
        self.query(self.api.default_model)
    }

    pub fn reported_costs(&self) -> String {
        self.query(self.api.reported_costs)
    }

    /// ABI 1.1 `live_models`: Moonshot's model list with the catalog's
    /// verdicts, or (status, error JSON). Blocks up to the total timeout.
    pub fn live_models(&self) -> Result<String, (MoonshotStatus, String)> {
        self.ask(self.api.live_models)
    }

    /// ABI 1.1 `balance`: the account balance JSON, or (status, error JSON).
    /// Blocks up to the total timeout.
    pub fn balance(&self) -> Result<String, (MoonshotStatus, String)> {
        self.ask(self.api.balance)
    }

    fn ask(
        &self,
        f: unsafe extern "C" fn(
            *const MoonshotInstance,
            *mut *mut c_char,
            *mut *mut c_char,
        ) -> MoonshotStatus,
    ) -> Result<String, (MoonshotStatus, String)> {
        let (mut out, mut error) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: live instance, valid out pointers.
        let status = unsafe { f(self.raw, &mut out, &mut error) };
        let out = take_string(self.api, out);
        let error = take_string(self.api, error);
        match (status, out) {
            (MOONSHOT_OK, Some(json)) => Ok(json),
            (status, _) => Err((status, error.unwrap_or_default())),
        }
    }

    /// Starts a completion; its parts and end arrive on the returned channel.
    /// `stop_after_parts` makes the callback return STOP after that many.
    pub fn complete(
        &self,
        request_json: &str,
        stop_after_parts: Option<usize>,
    ) -> Result<(Request, mpsc::Receiver<Event>), (MoonshotStatus, String)> {
        let request = CString::new(request_json).map_err(|_| {
            (
                moonshot_abi::MOONSHOT_ERR_INVALID_ARGUMENT,
                "NUL in request".to_string(),
            )
        })?;
        let (tx, rx) = mpsc::channel();
        let bridge = Box::into_raw(Box::new(Bridge {
            events: tx,
            stop_after_parts,
            parts: 0,
        }));
        let callbacks = MoonshotCallbacks {
            struct_size: std::mem::size_of::<MoonshotCallbacks>(),
            on_chunk: Some(on_chunk),
            on_done: Some(on_done),
        };
        let mut handle = std::ptr::null_mut();
        let mut error = std::ptr::null_mut();
        // SAFETY: all pointers valid for the call; bridge lives until on_done.
        let status = unsafe {
            (self.api.complete)(
                self.raw,
                request.as_ptr(),
                &callbacks,
                bridge as *mut c_void,
                &mut handle,
                &mut error,
            )
        };
        if status != MOONSHOT_OK {
            // SAFETY: no callback will run (header: a refused complete
            // starts nothing), so the bridge from Box::into_raw is still ours.
            drop(unsafe { Box::from_raw(bridge) });
            return Err((status, take_string(self.api, error).unwrap_or_default()));
        }
        Ok((
            Request {
                api: self.api,
                raw: handle,
            },
            rx,
        ))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: created by `create`, destroyed once.
        unsafe { (self.api.destroy)(self.raw) }
    }
}

/// A request handle; released on drop.
pub struct Request {
    api: &'static MoonshotApi,
    raw: *mut MoonshotRequest,
}

// SAFETY: cancel / wait / result / release are callable from any thread.
unsafe impl Send for Request {}
// SAFETY: cancel / wait / result may run concurrently (header); release
// runs in Drop, which has the request alone.
unsafe impl Sync for Request {}

impl Request {
    pub fn cancel(&self) {
        // SAFETY: live handle.
        unsafe { (self.api.cancel)(self.raw) };
    }

    /// The final status, or None if still running after `timeout`.
    pub fn wait(&self, timeout: Duration) -> Option<MoonshotStatus> {
        let ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        // SAFETY: live handle.
        let status = unsafe { (self.api.wait)(self.raw, ms) };
        (status != MOONSHOT_PENDING).then_some(status)
    }

    /// The final status and JSON, once finished.
    pub fn result(&self) -> Option<(MoonshotStatus, String)> {
        let mut out = std::ptr::null_mut();
        // SAFETY: live handle, valid out pointer.
        let status = unsafe { (self.api.request_result)(self.raw, &mut out) };
        (status != MOONSHOT_PENDING)
            .then(|| (status, take_string(self.api, out).unwrap_or_default()))
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        // SAFETY: released once.
        unsafe { (self.api.release)(self.raw) }
    }
}
