/**
 * `gatehouse call`: calls one tool through a gateway with the official MCP SDK
 * client. For smoke tests and the demo's first authenticated call.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parseCli } from './shared.ts';

export const CALL_USAGE = `  call URL TOOL [ARGS_JSON] [--token T]
        call a tool through a gateway with the MCP SDK client; the token
        comes from --token or $GATEHOUSE_TOKEN; prints the result as JSON
`;

export async function callCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, { token: { type: 'string' } });
  const [url, tool, rawArgs] = positionals;
  if (!url || !tool || positionals.length > 3) {
    process.stderr.write(`usage:\n${CALL_USAGE}`);
    return 2;
  }
  let args: Record<string, unknown> = {};
  if (rawArgs !== undefined) {
    try {
      const parsed: unknown = JSON.parse(rawArgs);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
      args = parsed as Record<string, unknown>;
    } catch {
      process.stderr.write('gatehouse: ARGS_JSON must be a JSON object, e.g. \'{"message":"hi"}\'\n');
      return 2;
    }
  }
  const token = values.token ?? process.env.GATEHOUSE_TOKEN;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token.trim()}` } : {};
  const client = new Client({ name: 'gatehouse-cli', version: '0.1.0' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    const result = await client.callTool({ name: tool, arguments: args });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return result.isError ? 1 : 0;
  } catch (err) {
    process.stderr.write(`gatehouse: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await client.close().catch(() => {});
  }
}
