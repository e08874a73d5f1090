// The plugin's bill -> what Puter's driver and MeteringService consume.
//
// The plugin prices a completion in integer microcents, one cost line per
// usage type ("moonshot:<model>:input-tokens", ...). Puter's driver prices
// the `usage` a provider hands it by multiplying each key by the served
// model's `costs[key]` (#computeCost), so the usage given to Puter holds
// only the billed counts under the model's cost keys: then the driver's
// figure equals the plugin's `total_ucents` exactly.

/** Cost-line kind -> Puter usage key (and model cost key). */
const LINE_KEYS = {
    'input-tokens': 'prompt_tokens', // uncached input: cached tokens have their own line
    'cached-tokens': 'cached_tokens',
    'output-tokens': 'completion_tokens',
    calls: 'web_search_calls', // moonshot:web-search:calls
};

/** The usage key of a cost line's usageType, e.g. "moonshot:kimi-k3:cached-tokens". */
function lineKey(usageType) {
    const kind = String(usageType).split(':').pop();
    return LINE_KEYS[kind];
}

/**
 * Puter's view of a plugin usage object (`{..., cost: {model, lines, total_ucents}}`):
 * `usage` (counts by cost key), `overrides` (integer microcents by cost key,
 * for utilRecordUsageObject), `totalUcents` and the model that served.
 * Returns null when the object carries no bill.
 */
export function meteredUsage(pluginUsage) {
    const cost = pluginUsage?.cost;
    if (!cost || !Array.isArray(cost.lines)) return null;
    const usage = {};
    const overrides = {};
    for (const line of cost.lines) {
        const key = lineKey(line.usageType);
        if (!key) continue;
        usage[key] = (usage[key] ?? 0) + Number(line.units);
        overrides[key] = (overrides[key] ?? 0) + Number(line.ucents);
    }
    for (const value of [...Object.values(usage), ...Object.values(overrides)]) {
        if (!Number.isSafeInteger(value) || value < 0) {
            throw new Error(`moonshot: a cost line is not a whole non-negative number: ${JSON.stringify(cost)}`);
        }
    }
    return {
        usage,
        overrides,
        totalUcents: Number(cost.total_ucents),
        model: cost.model,
        estimated: pluginUsage.estimated === true,
    };
}

/** The web-search fee per call, from the plugin's reported_costs rows. */
export function webSearchFee(reportedCosts) {
    const row = reportedCosts.find((r) => lineKey(r.usageType) === 'web_search_calls');
    return row ? Number(row.ucentsPerUnit) : undefined;
}
