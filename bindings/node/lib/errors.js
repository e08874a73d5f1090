// Plugin errors as errors Puter's driver can route: it reads `status` (or
// `statusCode`) to tell the caller's fault (4xx, no fallback worth trying)
// from an upstream that failed (401/403/429/5xx: try a fallback provider).

import { Status } from './native.js';

/** Refusals that are the caller's fault, whatever their source. */
const CALLER_FAULT = new Set([
    Status.INVALID_ARGUMENT,
    Status.INVALID_REQUEST,
    Status.UNKNOWN_MODEL,
    Status.MODEL_RETIRED,
]);

/** HTTP status for failures that did not come with one from Moonshot. */
const STATUS_OF = {
    [Status.TRANSPORT]: 502,
    [Status.PROTOCOL]: 502,
    [Status.TIMEOUT]: 504,
    [Status.BUSY]: 429,
    [Status.INTERNAL]: 500,
    [Status.CANCELLED]: 499,
};

/** Error types in OpenAI's vocabulary, which Puter's callers know. */
function typeOf(moonshotStatus, httpStatus) {
    if (CALLER_FAULT.has(moonshotStatus) || httpStatus === 400 || httpStatus === 422) {
        return 'invalid_request_error';
    }
    if (httpStatus === 401 || httpStatus === 403) return 'authentication_error';
    if (httpStatus === 429) return 'rate_limit_error';
    if (moonshotStatus === Status.CANCELLED) return 'cancelled';
    return 'api_error';
}

/**
 * A MoonshotError from a plugin status and its error details
 * (`{code, message, http_status, retryable, request_id, partial?}`).
 */
export class MoonshotError extends Error {
    constructor(moonshotStatus, details = {}) {
        super(details.message || `moonshot: status ${moonshotStatus}`);
        this.name = 'MoonshotError';
        this.moonshotStatus = moonshotStatus;
        this.code = details.code ?? 'error';
        const upstream = Number.isInteger(details.http_status) ? details.http_status : undefined;
        this.status = CALLER_FAULT.has(moonshotStatus)
            ? 400
            : (upstream ?? STATUS_OF[moonshotStatus] ?? 500);
        this.statusCode = this.status;
        this.type = typeOf(moonshotStatus, this.status);
        this.retryable = details.retryable === true;
        if (details.request_id) this.request_id = details.request_id;
    }
}

/** A MoonshotError from what native.js threw or on_done delivered. */
export function toMoonshotError(error) {
    if (error instanceof MoonshotError) return error;
    if (error && typeof error.moonshotStatus === 'number') {
        return new MoonshotError(error.moonshotStatus, error.details);
    }
    return error;
}
