// Plugin stream parts -> Puter's AIChatStream, the way Puter's own
// providers write it (utils/OpenAIUtil.js, create_chat_stream_handler):
// one message, a text block for text and reasoning, a tool_use block per
// call (addPartialJSON, end), then `chatStream.end(usage)`.

import { MoonshotError } from './errors.js';
import { Status } from './native.js';

export class StreamWriter {
    #chatStream;
    #onGone;
    #message;
    #text = null;
    #finished = false;
    #gone = false;
    #resolve;
    #reject;

    /**
     * @param chatStream Puter's AIChatStream (`message()`, `end(usage)`,
     *   `reportUsage`, and on newer Puter `setUsageCosts`, `setStop`)
     * @param onGone called once when the client has gone (a write threw or
     *   the response stream closed): the request is then cancelled
     */
    constructor(chatStream, onGone) {
        this.#chatStream = chatStream;
        this.#onGone = onGone;
        this.done = new Promise((resolve, reject) => {
            this.#resolve = resolve;
            this.#reject = reject;
        });
        // The driver pipes chatStream.stream to the response; when that stream
        // closes before we end it, the client went away.
        const sink = chatStream.stream;
        if (sink && typeof sink.once === 'function') {
            sink.once('close', () => {
                if (!this.#finished) this.#gone_();
            });
        }
        this.#write(() => {
            this.#message = chatStream.message();
        });
    }

    #gone_() {
        if (this.#gone) return;
        this.#gone = true;
        this.#onGone();
    }

    /** Runs one write; a throw means the client left (newer Puter). */
    #write(fn) {
        if (this.#gone) return false;
        try {
            fn();
            return true;
        } catch {
            this.#gone_();
            return false;
        }
    }

    #textBlock() {
        if (!this.#text) this.#text = this.#message.contentBlock({ type: 'text' });
        return this.#text;
    }

    #endText() {
        if (this.#text) {
            this.#text.end();
            this.#text = null;
        }
    }

    /** One plugin part; false when the client has gone. */
    part(part) {
        return this.#write(() => {
            switch (part.type) {
                case 'text':
                    this.#textBlock().addText(part.text);
                    break;
                case 'reasoning':
                    this.#textBlock().addReasoning(part.reasoning);
                    break;
                case 'tool_use': {
                    this.#endText();
                    const { type: _type, input, ...block } = part;
                    const tool = this.#message.contentBlock({ type: 'tool_use', ...block });
                    tool.addPartialJSON(JSON.stringify(input ?? {}));
                    tool.end();
                    break;
                }
                case 'usage':
                    // Metered by the request; written by chatStream.end(usage).
                    break;
                default:
                    this.#chatStream.writeChunk?.(part);
            }
        });
    }

    /** The usage was metered: the driver must not charge its estimate. */
    usageMetered(metered) {
        this.#write(() => {
            this.#chatStream.reportUsage?.(metered.usage);
            this.#chatStream.setUsageCosts?.({ ...metered.overrides });
        });
    }

    /** The request ended: end the stream, or reject so the driver writes
     * its error line after what was delivered. */
    finish({ status, body }, metered) {
        if (this.#finished) return;
        this.#finished = true;
        if (status === Status.OK && !this.#gone) {
            const ok = this.#write(() => {
                this.#chatStream.setStop?.(body.finish_reason);
                this.#endText();
                this.#message.end();
                this.#chatStream.end(metered ? { ...metered.usage } : undefined);
            });
            if (ok) {
                this.#resolve();
                return;
            }
        }
        if (status === Status.OK) {
            this.#reject(new MoonshotError(Status.CANCELLED, { code: 'cancelled', message: 'the client went away' }));
        } else {
            this.#reject(new MoonshotError(status, body));
        }
    }
}
