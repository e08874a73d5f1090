// Compiled by tsc (tests/tests/node_provider.rs), never run: Puter-side use
// of the package must type-check against index.d.ts.
import { MoonshotError, MoonshotProvider, type AIChatStreamLike, type IChatCompleteResult } from '../index.js';

declare const Context: { get(key: 'actor'): unknown };
declare const metering: { utilRecordUsageObject(u: Record<string, number>, a: unknown, p: string, c?: Record<string, number>): void };
declare const chatStream: AIChatStreamLike;

export async function registerAndUse(config: { apiKey: string }): Promise<number> {
    const provider = new MoonshotProvider(config, metering, { getActor: () => Context.get('actor') });
    const model: string = provider.getDefaultModel();
    const costs: number | undefined = provider.models().find((m) => m.id === model)?.costs.prompt_tokens;
    let result: IChatCompleteResult;
    try {
        result = await provider.complete({ messages: [{ role: 'user', content: 'Hi' }], model, stream: true });
    } catch (error) {
        if (error instanceof MoonshotError && error.type === 'invalid_request_error') return error.status;
        throw error;
    }
    if (result.stream === true) {
        await result.init_chat_stream({ chatStream });
        await result.finally_fn();
    } else {
        const tokens: number = result.usage.completion_tokens;
        void tokens;
    }
    await provider.close();
    return costs ?? 0;
}
