import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
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

type Assets = typeof import('@graphql-yoga/render-graphiql/graphiql');

/**
 * The assets, loaded on the first page request (the API itself never needs them) in a worker thread:
 * compiling their 9 MB module takes most of a second, which on the main thread would stall every
 * report and query meanwhile. Only the finished strings cross back.
 */
function loadAssets(): Promise<Assets> {
  const file = createRequire(import.meta.url).resolve('@graphql-yoga/render-graphiql/graphiql');
  const source = `const { parentPort, workerData } = require('node:worker_threads');
    const { css, editorWorkerService, favicon, graphqlWorker, js, jsonWorker } = require(workerData);
    parentPort.postMessage({ css, editorWorkerService, favicon, graphqlWorker, js, jsonWorker });`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData: file });
    worker.once('message', (assets: Assets) => {
      resolve(assets);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the GraphiQL asset loader exited with ${code}`)));
  });
}

async function buildPage(options: GraphiQLOptions): Promise<string> {
  const assets = await loadAssets();
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
