// @moonshot-provider/puter: the Moonshot AI (Kimi) chat provider for Puter,
// loading libmoonshot_provider through its C ABI (koffi).
export { MoonshotProvider } from './lib/provider.js';
export { MoonshotError } from './lib/errors.js';
export { Status, ABI_MAJOR, ABI_MINOR, resolveLibraryPath, pendingCount } from './lib/native.js';
