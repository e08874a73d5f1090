// Types of @moonshot-provider/puter: the Moonshot AI (Kimi) chat provider
// for Puter's chat driver, over libmoonshot_provider's C ABI.
// Shapes follow Puter's src/backend/drivers/ai-chat/types.ts.

/** The plugin's status codes (include/moonshot_provider.h). */
export declare const Status: Readonly<{
    OK: 0;
    PENDING: 1;
    INVALID_ARGUMENT: 2;
    INVALID_REQUEST: 3;
    UNKNOWN_MODEL: 4;
    MODEL_RETIRED: 5;
    UPSTREAM: 6;
    PROTOCOL: 7;
    TRANSPORT: 8;
    TIMEOUT: 9;
    CANCELLED: 10;
    BUSY: 11;
    INTERNAL: 12;
}>;
export declare const ABI_MAJOR: 1;
export declare const ABI_MINOR: number;

/** options.library, else MOONSHOT_PROVIDER_LIB, else the repo's release build. */
export declare function resolveLibraryPath(library?: string): string;
/** Requests and destroys in flight in this process (the event loop is kept alive while > 0). */
export declare function pendingCount(): number;

/** Puter's `providers.moonshot` block: the key plus the plugin's instance fields. */
export interface MoonshotProviderConfig {
    /** Moonshot's API key (at most 1024 bytes); never in any output. */
    apiKey?: string;
    secret_key?: string;
    key?: string;
    base_url?: string;
    timeouts?: { connect_ms?: number; first_byte_ms?: number; idle_ms?: number; total_ms?: number };
    retries?: { max?: number; base_delay_ms?: number; max_delay_ms?: number };
    /** Plugin threads; each can hold one of koffi's blocked-callback slots (4096 per process). */
    max_concurrency?: number;
    max_queue?: number;
    max_request_bytes?: number;
    web_search?: { fee_ucents?: number; max_rounds?: number };
    retired_models?: 'migrate' | 'error';
    /** YYYY-MM-DD, for tests. */
    today?: string;
    [field: string]: unknown;
}

export interface MoonshotProviderOptions {
    /** Path of libmoonshot_provider.so. */
    library?: string;
    /** Read at the start of each complete(); Puter passes `() => Context.get('actor')`. */
    getActor?: () => unknown;
    /** Metering key prefix, `moonshot` by default; `moonshotai` keeps Puter's built-in provider's keys. */
    meteringPrefix?: string;
    /** Streamed requests ask the plugin for `coalesce_parts` (the text of
     * one socket read as one part: one event-loop hop instead of one per
     * token) unless the request sets it. Default true. */
    coalesceParts?: boolean;
}

/** The part of Puter's MeteringService the provider calls, once per request. */
export interface MeteringServiceLike {
    utilRecordUsageObject(
        usage: Record<string, number>,
        actor: unknown,
        modelPrefix: string,
        costOverrides?: Record<string, number>,
    ): unknown;
}

/** Puter's IChatModel, as the plugin describes its models. */
export interface IChatModel {
    id: string;
    provider?: string;
    puterId?: string;
    aliases?: string[];
    name?: string;
    costs_currency: string;
    input_cost_key?: string;
    output_cost_key?: string;
    /** Microcents per unit (`tokens` is the scale, 1,000,000). */
    costs: Record<string, number>;
    context?: number;
    max_tokens: number;
    modalities?: { input: string[]; output: string[] };
    tool_call?: boolean;
    [field: string]: unknown;
}

/** The usage handed to Puter: billed counts under the model's cost keys. */
export interface MeteredUsage {
    /** Uncached input tokens. */
    prompt_tokens: number;
    cached_tokens: number;
    completion_tokens: number;
    web_search_calls?: number;
    [key: string]: number | undefined;
}

/** Puter's ICompleteArguments (the fields Moonshot reads; others pass). */
export interface ICompleteArguments {
    messages: unknown;
    model?: string;
    stream?: boolean;
    tools?: unknown[];
    tool_choice?: unknown;
    max_tokens?: number;
    temperature?: number;
    top_p?: number;
    reasoning?: { effort?: string };
    reasoning_effort?: string;
    thinking?: boolean | { type: 'enabled' | 'disabled'; keep?: string };
    response_format?: unknown;
    web_search?: boolean;
    prompt_cache_key?: string;
    [field: string]: unknown;
}

export interface IChatMessageResult {
    message: { role: 'assistant'; content: unknown; [field: string]: unknown };
    usage: MeteredUsage;
    finish_reason: string;
    /** The model that served. */
    model?: string;
    request_id?: string;
    init_chat_stream?: never;
    stream?: never;
    finally_fn?: never;
}

/** What the provider calls on Puter's AIChatStream (utils/Streaming.js). */
export interface AIChatStreamLike {
    message(): {
        contentBlock(params: { type: 'text' } | { type: 'tool_use'; id: string; name: string; [field: string]: unknown }): {
            addText?(text: string): void;
            addReasoning?(reasoning: string): void;
            addPartialJSON?(json: string): void;
            end(): void;
        };
        end(): void;
    };
    end(usage?: MeteredUsage): void;
    reportUsage?(usage: MeteredUsage): void;
    writeChunk?(chunk: Record<string, unknown>): void;
    /** Newer Puter: microcents per usage key. */
    setUsageCosts?(costs: Record<string, number>): void;
    /** Newer Puter: the finish reason. */
    setStop?(reason: string): void;
    /** The stream the driver pipes to the response; its close cancels the request. */
    stream?: { once(event: 'close', listener: () => void): unknown };
}

export interface IChatStreamResult {
    stream: true;
    init_chat_stream(params: { chatStream: AIChatStreamLike }): Promise<void>;
    finally_fn(): Promise<void>;
}

export type IChatCompleteResult = IChatMessageResult | IChatStreamResult;

/** An error Puter's driver can route by `status`. */
export declare class MoonshotError extends Error {
    /** The plugin's status code. */
    moonshotStatus: number;
    /** The plugin's error code, e.g. `unknown_model`, `invalid_request`, `cancelled`. */
    code: string;
    /** 400 for the caller's faults, Moonshot's HTTP status for upstream refusals, else 5xx. */
    status: number;
    statusCode: number;
    /** `invalid_request_error` for the caller's faults. */
    type: 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'cancelled' | 'api_error';
    retryable: boolean;
    request_id?: string;
}

/** Puter's IChatProvider over libmoonshot_provider. */
export declare class MoonshotProvider {
    constructor(config: MoonshotProviderConfig, meteringService?: MeteringServiceLike, options?: MoonshotProviderOptions);
    readonly plugin: { name: string; version: string; abi: { major: number; minor: number; size: number }; path: string };
    models(): IChatModel[];
    list(): string[];
    getDefaultModel(): string;
    getReportedCosts(): Array<{ usageType: string; ucentsPerUnit: number; unit: string; source: string }>;
    checkModeration(text: string): Promise<{ flagged: boolean; categories?: string[] }>;
    /** Throws a MoonshotError for a refusal or an upstream failure before the first part. */
    complete(args: ICompleteArguments): Promise<IChatCompleteResult>;
    /** Cancels what is in flight, waits for it to end, frees the instance. */
    close(): Promise<void>;
}
