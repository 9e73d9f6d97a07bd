/** GraphiQL for the gateway's /graphql, bundled from npm (nothing from a CDN), querying as the signed-in user. */
// GraphiQL's styles without its bundle of web fonts (graphiql/graphiql.css inlines 34 Roboto and Fira Code
// files, 275 KB gzip): the page uses the machine's sans-serif and monospace faces, and loads no font.
import "@graphiql/react/dist/style.css";
import "graphiql/src/style.css";
import { GraphiQL } from "graphiql";
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import { session } from "./api";

const DEFAULT_QUERY = `# Your backtests, newest first (Ctrl-Enter runs it)
{
  backtests(limit: 10) {
    total
    items {
      taskId
      state
      strategyName
      createdAt
      metrics
    }
  }
}
`;

interface GraphQLParams {
  query: string;
  variables?: unknown;
  operationName?: string | null;
}

/** POST one query to /graphql with the session's token; a 401 goes back to the sign-in page. */
async function fetcher(params: GraphQLParams): Promise<unknown> {
  const current = session();
  if (!current) {
    location.assign("/#/login");
    return { errors: [{ message: "not signed in" }] };
  }
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${current.token}` },
    body: JSON.stringify(params),
  });
  if (response.status === 401) location.assign("/#/login");
  return response.json();
}

const root = document.getElementById("graphiql");
if (!session()) location.assign("/#/login");
else if (root) createRoot(root).render(createElement(GraphiQL, { fetcher, defaultQuery: DEFAULT_QUERY }));
