import type { GraphiQLOptions } from 'graphql-yoga';
import { TOKEN_PLACEHOLDER } from './options';
import { tokenGateScript } from './token-gate';

// GraphiQL's page with every asset inlined from @graphql-yoga/render-graphiql, so it works on a network
// with no route to a CDN (yoga's own page loads GraphiQL from unpkg). The layout follows that package's
// renderGraphiQL; it is written out here to run the token gate before GraphiQL starts.

/** `<` escaped so no value can close the <script> element it is written into. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

async function buildPage(options: GraphiQLOptions): Promise<string> {
  // Imported on the first page request: the assets are a 9 MB module the API itself never needs.
  const assets = await import('@graphql-yoga/render-graphiql/graphiql');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${escapeHtml(options.title ?? 'GraphiQL')}</title>
    <link rel="icon" href="${assets.favicon}" />
    <style>${assets.css}</style>
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>GraphiQL needs JavaScript.</noscript>
    <div id="root"></div>
    <script>
      function workerUrl(source) {
        return URL.createObjectURL(new Blob([source], { type: 'application/javascript' }));
      }
      const workers = {
        editorWorkerService: workerUrl(${scriptJson(assets.editorWorkerService)}),
        json: workerUrl(${scriptJson(assets.jsonWorker)}),
        graphql: workerUrl(${scriptJson(assets.graphqlWorker)}),
      };
      self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (moduleId, label) => workers[label] };
      ${tokenGateScript(TOKEN_PLACEHOLDER)}
      ${assets.js};
      YogaGraphiQL.renderYogaGraphiQL(document.querySelector('#root'), {
        ...${scriptJson(options)},
        onEditHeaders: fleetgateTokenGate.headersEdited,
      });
    </script>
  </body>
</html>
`;
}

const pages = new Map<string, Promise<string>>();

/** yoga's `renderGraphiQL`: the page for these options, built once. */
export function renderGraphiQLPage(options: GraphiQLOptions): Promise<string> {
  const key = JSON.stringify(options);
  let page = pages.get(key);
  if (!page) {
    page = buildPage(options);
    pages.set(key, page);
  }
  return page;
}
