// Moonshot AI (Kimi) chat provider: TypeScript declarations for JavaScript hosts.
//
// What a host sends to the plugin's `complete` (Puter's ICompleteArguments
// with Moonshot's own options), what comes back (the result and the stream
// parts), and what `host-demo serve` answers puter.js with. Types only:
//
//   import type { MoonshotCompleteArguments } from './include/moonshot.js';
//   /** @import { MoonshotPuterChat } from './include/moonshot.js' */   (JSDoc)
//
// The C header (moonshot_provider.h) is the contract of the library; these
// are the JSON shapes that cross it, written once for TypeScript. The JSON
// Schemas in include/schemas/ describe the same shapes field by field;
// tests/tests/schemas.rs checks that each interface here has exactly its
// schema's properties, optional exactly where the schema does not require.

// ---------------------------------------------------------------- requests

/** Ids served in late 2026; any other id, alias (`kimi`), `moonshot/<id>`
 * or puterId (`moonshot:moonshot/kimi-k2.6`) the catalog knows works too,
 * and a retired id is migrated to its successor (the result says so). */
export type MoonshotModelId =
    | 'kimi-k3'
    | 'kimi-k2.7-code'
    | 'kimi-k2.7-code-highspeed'
    | 'kimi-k2.6'
    | (string & {});

/** Every spelling of the provider, in any case, names the same provider. */
export type MoonshotProviderName =
    | 'moonshot'
    | 'moonshot-ai'
    | 'moonshotai'
    | 'kimi'
    | (string & {});

export interface TextPart {
    type?: 'text';
    text: string;
}

/** A base64 data URI, `ms://<file_id>`, or an http(s) URL the plugin
 * fetches and inlines (Moonshot itself fetches nothing). */
export interface ImagePart {
    type?: 'image_url';
    image_url: string | { url: string };
}

export interface VideoPart {
    type?: 'video_url';
    video_url: string | { url: string };
}

/** Puter's tool call block, inside an assistant message. */
export interface ToolUseBlock {
    type: 'tool_use';
    id: string;
    name: string;
    input?: unknown;
}

/** Puter's tool result block, inside a user message. */
export interface ToolResultBlock {
    type: 'tool_result';
    tool_use_id: string;
    content?: string | Array<string | TextPart> | Record<string, unknown>;
}

/** Reasoning echoed back inside an assistant message. */
export interface ReasoningBlock {
    type: 'thinking' | 'reasoning';
    thinking?: string;
    reasoning?: string;
    text?: string;
}

export type ContentPart =
    | string
    | TextPart
    | ImagePart
    | VideoPart
    | ToolUseBlock
    | ToolResultBlock
    | ReasoningBlock;

export type MessageContent = string | ContentPart | ContentPart[];

/** An OpenAI-style tool call; `arguments` may also be the parsed object. */
export interface ToolCall {
    id: string;
    type?: 'function' | 'builtin_function';
    function: { name: string; arguments: string | Record<string, unknown> };
}

export interface SystemMessage {
    role: 'system' | 'developer';
    content: MessageContent;
    name?: string;
}

/** kimi-k3's dynamic tools: a system message declaring tools, content
 * optional (other models refuse it before anything is sent). */
export interface SystemToolsMessage {
    role: 'system';
    tools: MoonshotTool[];
    content?: string;
    name?: string;
}

/** A message without a role is a user message (puter.js sends a string
 * prompt as `[{content}]`). */
export interface UserMessage {
    role?: 'user';
    content: MessageContent;
    name?: string;
}

export interface AssistantMessage {
    role: 'assistant';
    content?: MessageContent | null;
    name?: string;
    tool_calls?: ToolCall[];
    /** The reasoning of this turn, sent back with its tool calls (any of
     * these names; thinking models need it). */
    reasoning_content?: string;
    reasoning?: string;
    /** Partial mode, on the last message only: the answer continues this
     * prefix, and the result holds the prefix exactly once. */
    partial?: boolean;
}

export interface ToolMessage {
    role: 'tool';
    tool_call_id: string;
    content: MessageContent;
    name?: string;
}

export type MoonshotMessage = SystemMessage | SystemToolsMessage | UserMessage | AssistantMessage | ToolMessage;

/** A JSON Schema object (Moonshot's subset; a top-level `$schema` is dropped). */
export type JsonSchema = { [keyword: string]: unknown };

export interface FunctionTool {
    type: 'function';
    function: {
        /** `^[a-zA-Z_][a-zA-Z0-9-_]{2,63}$` */
        name: string;
        description?: string;
        parameters?: JsonSchema;
        strict?: boolean;
    };
}

/** Moonshot's built-in web search. Declared among the tools (the way to
 * reach it through puter.ai.chat), it makes the plugin run the search round
 * trips itself; the caller sees only the final answer. */
export interface WebSearchTool {
    type: 'builtin_function';
    function: { name: '$web_search' };
}

/** At most 128. */
export type MoonshotTool = FunctionTool | WebSearchTool;

export type ToolChoice =
    | 'auto'
    | 'none'
    | 'required'
    | { type: 'function'; function: { name: string } };

/** `true` / `false`, or Moonshot's object; `keep: 'all'` keeps earlier
 * turns' thinking (kimi-k2.6 only). kimi-k2.7-code always thinks and refuses
 * `false`; on kimi-k3 `false` means the lowest effort. */
export type ThinkingOption = boolean | { type: 'enabled' | 'disabled'; keep?: 'all' | null };

/** Puter's effort scale. kimi-k3 gets it as `reasoning_effort` (low, high,
 * max; medium is sent as high, xhigh as max); on kimi-k2.6 / k2.5 `none`,
 * `minimal` and `off` turn thinking off and the other levels turn it on. */
export type ReasoningEffort = 'none' | 'minimal' | 'off' | 'low' | 'medium' | 'high' | 'xhigh' | 'max';

export type ResponseFormat =
    | { type: 'text' }
    | { type: 'json_object' }
    | {
          type: 'json_schema';
          /** `name` defaults to "response". */
          json_schema: { name?: string; schema: JsonSchema; strict?: boolean; description?: string };
      };

/** Every chat option the plugin reads, beside `messages`. */
export interface MoonshotChatOptions {
    /** Default: the provider's default model, kimi-k2.6. */
    model?: MoonshotModelId;
    provider?: MoonshotProviderName;
    stream?: boolean;
    /** With `stream`: the text (or reasoning) deltas of one socket read
     * come as one part (fewer on_chunk calls); the joined text and the
     * result are the same. Default false: one part per delta. */
    coalesce_parts?: boolean;
    /** Sent to Moonshot as `max_completion_tokens`. */
    max_tokens?: number;
    max_completion_tokens?: number;
    /** Left out where the model pins it (the result's `adjustments` say so). */
    temperature?: number;
    top_p?: number;
    presence_penalty?: number;
    frequency_penalty?: number;
    /** Up to 5 where the model allows it. */
    n?: number;
    /** At most 5 strings of at most 32 bytes. */
    stop?: string | string[];
    tools?: MoonshotTool[];
    tool_choice?: ToolChoice;
    thinking?: ThinkingOption;
    /** Puter's nested form of `reasoning_effort`; `true` / `false` work too. */
    reasoning?: boolean | ReasoningEffort | { effort: ReasoningEffort };
    reasoning_effort?: ReasoningEffort;
    /** Same as declaring the `$web_search` tool. */
    web_search?: boolean;
    prompt_cache_key?: string;
    safety_identifier?: string;
    response_format?: ResponseFormat;
    /** Forwarded; kimi-k3 takes only `false` (`true` is refused). */
    logprobs?: boolean;
    /** 0 to 20; needs `logprobs: true`. */
    top_logprobs?: number;
    /** Predicted output (kimi-k3 accepts it). */
    prediction?: { type: 'content'; content: string | Array<{ type?: 'text'; text: string }> };
    /** Token id to bias, -100 to 100; refused on kimi-k3. */
    logit_bias?: { [tokenId: string]: number };
}

/** The JSON a host passes to `complete`: Puter's ICompleteArguments. */
export interface MoonshotCompleteArguments extends MoonshotChatOptions {
    /** A bare string is one user message. */
    messages: string | MoonshotMessage | Array<string | MoonshotMessage>;
    /** Used only when `messages` is absent: one user message. */
    prompt?: string;
}

/** The JSON a host passes to `create` (include/schemas/config.schema.json
 * gives each field's unit, default and bounds). One of the three key
 * fields is required. */
export interface MoonshotConfig {
    apiKey?: string;
    secret_key?: string;
    key?: string;
    /** Default `https://api.moonshot.ai/v1`. */
    base_url?: string;
    baseURL?: string;
    baseUrl?: string;
    timeouts?: { connect_ms?: number; first_byte_ms?: number; idle_ms?: number; total_ms?: number };
    retries?: { max?: number; base_delay_ms?: number; max_delay_ms?: number };
    /** Requests running at once (1 to 16384, default 8). */
    max_concurrency?: number;
    /** Requests waiting for a thread (default 256); beyond it `complete` answers busy. */
    max_queue?: number;
    max_request_bytes?: number;
    /** Most JSON values in one request (default 1,000,000). */
    max_request_values?: number;
    /** Request bytes held at once by the instance (default 256 MiB). */
    max_inflight_request_bytes?: number;
    /** Most bytes of text, reasoning and tool arguments in one answer (default 16 MiB). */
    max_answer_bytes?: number;
    media?: {
        allow_private_networks?: boolean;
        allow_addresses?: string[];
        debug_errors?: boolean;
        max_items?: number;
        max_total_bytes?: number;
        deadline_ms?: number;
    };
    tls?: { roots?: 'webpki' | 'system' | 'both'; ca_pem?: string; ca_file?: string };
    /** `http://[user:password@]host:port`; `''` turns proxies off. */
    proxy?: string;
    /** Pool thread stack in KiB (default 512, at least 128). */
    worker_stack_kib?: number;
    retired_models?: 'migrate' | 'error';
    web_search?: { fee_ucents?: number; max_rounds?: number };
    /** YYYY-MM-DD, for tests. */
    today?: string;
}

// ----------------------------------------------------------------- results

export interface MoonshotCostLine {
    /** e.g. `moonshot:kimi-k2.6:input-tokens` */
    usageType: string;
    units: number;
    ucentsPerUnit: number;
    ucents: number;
}

/** Token counts and the bill, in integer microcents (1 USD = 10^8). */
export interface MoonshotUsage {
    /** Input tokens, cached ones included. */
    prompt_tokens: number;
    completion_tokens: number;
    cached_tokens: number;
    uncached_prompt_tokens: number;
    total_tokens: number;
    web_search_calls: number;
    /** True when Moonshot reported no usage and the plugin estimated it. */
    estimated: boolean;
    cost: MoonshotCost;
}

/** The bill, at the prices of the model that served. */
export interface MoonshotCost {
    model: string;
    /** input, cached and output tokens, then web-search calls when any. */
    lines: MoonshotCostLine[];
    /** The amount to bill, in integer microcents. */
    total_ucents: number;
    /** total_ucents / 10^6, for display. */
    usd_cents: number;
}

/** A tool call in a result (arguments as Moonshot sent them). */
export interface ResultToolCall {
    id: string;
    type: 'function' | 'builtin_function';
    function: { name: string; arguments: string };
}

export interface MoonshotResultMessage {
    role: 'assistant';
    content: string;
    reasoning?: string;
    reasoning_content?: string;
    tool_calls?: ResultToolCall[];
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | (string & {});

/** Puter's IChatMessageResult, plus what explains it. */
export interface MoonshotChatResult {
    message: MoonshotResultMessage;
    finish_reason: FinishReason | null;
    usage: MoonshotUsage;
    /** The model that served (after migration, or moonshot-v1-auto's tier). */
    model: string;
    /** Moonshot's Msh-Request-Id (else X-Msh-Trace-Id, else x-request-id). */
    request_id?: string | null;
    /** Only when n > 1 (not streamed). */
    choices?: Array<{ index: number; message: Record<string, unknown>; finish_reason: string | null }>;
    migrated_from?: string;
    migration_reason?: string;
    /** What the plugin changed to satisfy the model's rules, in words. */
    adjustments?: string[];
    /** Set by `host-demo serve`, as Puter's driver sets it. */
    via_ai_chat_service?: boolean;
}

/** Error details: what `on_done` gets on failure and what `create` and
 * `complete` store in `out_error` (include/schemas/error.schema.json). */
export interface MoonshotErrorDetails {
    /** Moonshot's `error.type` (e.g. `content_filter`) or the plugin's own
     * code (`unknown_model`, `stream_cut`, `timeout`, ...). */
    code: string;
    message: string;
    /** Moonshot's HTTP status, when it answered. */
    http_status: number | null;
    retryable: boolean;
    request_id: string | null;
    /** From `on_done` only, when something was received before the failure. */
    partial?: MoonshotChatResult;
}

/** Stream parts, in Puter's NDJSON vocabulary, in order: reasoning, text,
 * whole tool calls, then usage; an error line ends a stream that failed
 * after its first part. */
export type MoonshotStreamPart =
    | { type: 'text'; text: string }
    | { type: 'reasoning'; reasoning: string }
    | { type: 'tool_use'; id: string; name: string; input: unknown }
    | { type: 'usage'; usage: MoonshotUsage }
    | ({ type: 'error' } & ServeErrorDetails);

/** What `host-demo serve` answers under `error` and on a stream's error
 * line: the plugin's details without `partial`, or, for a failure of the
 * host itself, only `code` and `message`. */
export type ServeErrorDetails = Pick<MoonshotErrorDetails, 'code' | 'message'> &
    Partial<Omit<MoonshotErrorDetails, 'code' | 'message' | 'partial'>>;

/** An IChatModel, as `models()` and the models endpoint describe it. */
export interface MoonshotModel {
    puterId: string;
    id: string;
    name: string;
    aliases: string[];
    provider: 'moonshot';
    modalities: { input: Array<'text' | 'image' | 'video'>; output: Array<'text'> };
    costs_currency: 'usd-cents';
    input_cost_key: 'prompt_tokens';
    output_cost_key: 'completion_tokens';
    /** Cents per `tokens` tokens, i.e. microcents per token. */
    costs: { tokens: number; prompt_tokens: number; completion_tokens: number; cached_tokens?: number };
    context: number;
    max_tokens: number;
    tool_call: boolean;
    json_mode: boolean;
    partial_mode: boolean;
    /** Thinks by default. */
    reasoning: boolean;
    knowledge: string;
    /** YYYY-MM-DD */
    released: string | null;
    retired_on: string | null;
    successor: string | null;
}

// ------------------------------------------------- host-demo serve (Puter)

/** The body of `POST /drivers/call` (puter.js sends it as
 * `text/plain;actually=json`). */
export interface DriverCall {
    interface: 'puter-chat-completion';
    driver?: 'ai-chat';
    method: 'complete' | 'models' | 'list';
    args?: MoonshotCompleteArguments | Record<string, never>;
    test_mode?: boolean;
    auth_token?: string | null;
}

export interface DriverSuccess<T> {
    success: true;
    service: { name: 'ai-chat' };
    result: T;
}

/** A refusal, with the HTTP status it came with. */
export interface DriverFailure {
    success: false;
    error: ServeErrorDetails & { status: number };
}

export type DriverEnvelope<T> = DriverSuccess<T> | DriverFailure;

/** `GET /puterai/chat/models/details` */
export interface ModelDetails {
    models: MoonshotModel[];
}

/** The options puter.ai.chat (puter.js 2.6.3) copies onto the driver call.
 * It drops every other one (response_format, tool_choice, top_p, thinking,
 * web_search, prompt_cache_key, ...): reach thinking through `reasoning` /
 * `reasoning_effort`, web search through the `$web_search` tool, and the
 * rest through puter.drivers.call ({@link MoonshotPuterDrivers}). */
export type PuterJsChatOptions = Pick<
    MoonshotChatOptions,
    'model' | 'provider' | 'stream' | 'max_tokens' | 'temperature' | 'tools' | 'reasoning' | 'reasoning_effort'
> & { driver?: string; normalize?: boolean };

/** What a non-streamed puter.ai.chat resolves to: `String(result)` is the
 * answer's text. */
export type PuterJsChatResult = MoonshotChatResult & { toString(): string };

/** puter.ai.chat against a Moonshot host. It rejects with a
 * {@link DriverFailure} when the host refuses before streaming. */
export interface MoonshotPuterChat {
    (
        prompt: string | MoonshotMessage[],
        options: PuterJsChatOptions & { stream: true },
    ): Promise<AsyncIterable<MoonshotStreamPart>>;
    (
        prompt: string,
        media: string | string[],
        options: PuterJsChatOptions & { stream: true },
    ): Promise<AsyncIterable<MoonshotStreamPart>>;
    (
        prompt: string,
        media: string | string[],
        options?: PuterJsChatOptions & { stream?: false },
    ): Promise<PuterJsChatResult>;
    (
        prompt: string | MoonshotMessage[],
        options?: PuterJsChatOptions & { stream?: false },
    ): Promise<PuterJsChatResult>;
    /** Options whose `stream` is only known at run time. */
    (
        prompt: string | MoonshotMessage[],
        options: PuterJsChatOptions,
    ): Promise<PuterJsChatResult | AsyncIterable<MoonshotStreamPart>>;
}

/** puter.drivers.call for chat: the arguments go through untouched, so
 * every Moonshot option reaches the plugin. It resolves the envelope (a
 * refusal too) or, for a stream, the parts. Pass all four arguments: with
 * three, puter.js takes the second for the method. */
export interface MoonshotPuterDrivers {
    call(
        iface: 'puter-chat-completion',
        driver: 'ai-chat',
        method: 'complete',
        args: MoonshotCompleteArguments & { stream: true },
    ): Promise<AsyncIterable<MoonshotStreamPart> | DriverFailure>;
    call(
        iface: 'puter-chat-completion',
        driver: 'ai-chat',
        method: 'complete',
        args: MoonshotCompleteArguments,
    ): Promise<DriverEnvelope<MoonshotChatResult>>;
    call(
        iface: 'puter-chat-completion',
        driver: 'ai-chat',
        method: 'models',
        args: Record<string, never>,
    ): Promise<DriverEnvelope<MoonshotModel[]>>;
    call(
        iface: 'puter-chat-completion',
        driver: 'ai-chat',
        method: 'list',
        args: Record<string, never>,
    ): Promise<DriverEnvelope<string[]>>;
}
