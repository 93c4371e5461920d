// A script for GraphiQL's page, run before GraphiQL starts. GraphiQL fetches the schema once, at load,
// with the headers the Headers tab holds then, and shows a refusal in the result pane; here the schema
// request waits until the tab holds a token the gateway accepts, so Docs fills in once a token is pasted.
// It wraps window.fetch because yoga's GraphiQL calls `globalThis.fetch` for every request it sends.

/** JavaScript for a <script> element; `placeholder` is the Authorization value the Headers tab starts with. */
export function tokenGateScript(placeholder: string): string {
  return `
const fleetgateTokenGate = (() => {
  const placeholder = ${JSON.stringify(placeholder)};
  const send = window.fetch.bind(window);
  let current = null; // the Headers tab's Authorization, when it looks like a token
  let onChange = () => {};

  function usable(value) {
    return typeof value === 'string' && value.trim() !== placeholder && /^Bearer\\s+\\S+$/i.test(value.trim()) ? value.trim() : null;
  }
  function authorizationIn(text) {
    try {
      const headers = JSON.parse(text || '{}');
      for (const name of Object.keys(headers)) if (name.toLowerCase() === 'authorization') return usable(headers[name]);
    } catch {}
    return null;
  }
  // Resolves with the tab's token once it is one other than \`refused\`.
  function tokenOtherThan(refused) {
    return new Promise((resolve) => {
      const check = () => (current && current !== refused ? resolve(current) : (onChange = check));
      check();
    });
  }
  function refusal(message) {
    const body = JSON.stringify({ errors: [{ message, extensions: { code: 'UNAUTHENTICATED' } }] });
    return new Response(body, { status: 401, headers: { 'content-type': 'application/json' } });
  }

  window.fetch = async (input, init) => {
    const request = new Request(input, init);
    if (request.method !== 'POST') return send(input, init);
    const body = await request.clone().text();
    let operationName = null;
    try { operationName = JSON.parse(body).operationName; } catch {}
    const given = request.headers.get('authorization');
    if (operationName !== 'IntrospectionQuery') {
      if (given && given.trim() === placeholder) {
        return refusal('Paste an API token in the Headers tab, in place of <paste a token: …>. On the gateway\\'s machine, npm run token -- create --role viewer --name "my browser" makes one.');
      }
      return send(input, init);
    }
    let token = usable(given) || (await tokenOtherThan(null));
    for (;;) {
      const headers = new Headers(request.headers);
      headers.set('authorization', token);
      const response = await send(request.url, { method: 'POST', headers, body, credentials: request.credentials });
      if (response.status !== 401) return response;
      token = await tokenOtherThan(token);
    }
  };

  return {
    /** GraphiQL's onEditHeaders. */
    headersEdited(text) {
      current = authorizationIn(text);
      onChange();
    },
  };
})();
`;
}
