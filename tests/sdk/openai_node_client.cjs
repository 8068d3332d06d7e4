// Drives llm-proxy with the official OpenAI Node SDK (`openai` from npm) the way an application would, and
// prints what the application sees as one JSON line. Run by tests/integration/sdk_openai_node_test.cpp with:
//   PROXY_BASE_URL  e.g. http://127.0.0.1:PORT/v1
//   PROXY_TOKEN     a valid withering token
//   PROXY_SPENT_TOKEN  a token whose quota is used up (429)
// and NODE_PATH pointing at the node_modules that holds `openai` (scripts/setup-sdk.sh installs it).
'use strict';
const OpenAI = require('openai');

const baseURL = process.env.PROXY_BASE_URL;
const messages = [{ role: 'user', content: 'Say hello' }];
const client = (apiKey) => new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });

/// What an application can read off an SDK error.
function describe(error) {
  return {
    sdk_error: error instanceof OpenAI.APIError,
    class: error.constructor.name,
    status: error.status ?? null,
    code: error.code ?? null,
    type: error.type ?? null,
    message: error.message ?? null,
    request_id: (error.headers && error.headers['x-request-id']) || null,
  };
}

async function main() {
  const out = { sdk_version: require('openai/version').VERSION };

  const plain = await client(process.env.PROXY_TOKEN).chat.completions.create({ model: 'gpt-4o', messages });
  out.plain = { object: plain.object, content: plain.choices[0].message.content };

  const stream = await client(process.env.PROXY_TOKEN).chat.completions.create({ model: 'gpt-4o', messages, stream: true });
  const pieces = [];
  for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta?.content ?? '');
  out.stream = { chunks: pieces.length, text: pieces.join('') };

  for (const [name, token] of [['unauthorized', 'sk-AAAAAAAAAAAAAAAAAAAAAA'], ['spent', process.env.PROXY_SPENT_TOKEN]]) {
    try {
      await client(token).chat.completions.create({ model: 'gpt-4o', messages });
      out[name] = { succeeded: true };
    } catch (error) {
      out[name] = describe(error);
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((error) => {
  process.stderr.write(`sdk client failed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
