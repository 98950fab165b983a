/**
 * Client for the query service (`kumohub.extensions.query`) under `<base>/kumohub/query/`.
 *
 * Every call goes through `ServerConnection.makeRequest`, which adds the XSRF header and the
 * server token the way JupyterLab's own services do, so the API needs no exception in the
 * download guard or in the server's authentication.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export type QueryState = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

export const FINAL_STATES: ReadonlySet<QueryState> = new Set<QueryState>([
  'SUCCEEDED',
  'FAILED',
  'CANCELLED'
]);

export interface IColumn {
  name: string;
  type: string;
}

export interface IEngines {
  engines: string[];
  default: string;
  workgroups: string[];
  default_workgroup: string | null;
  row_cap: number;
  bytes_scanned_limit: number | null;
}

export interface ISubmitRequest {
  sql: string;
  engine?: string;
  workgroup?: string;
}

export interface IQueryStatus {
  id: string;
  state: QueryState;
  engine: string;
  workgroup: string | null;
  sql: string;
  submitted: string;
  elapsed_ms: number | null;
  bytes_scanned: number | null;
  error: string | null;
  row_count: number | null;
  columns: IColumn[] | null;
}

export interface IResultPage {
  columns: IColumn[];
  rows: unknown[][];
  offset: number;
  limit: number;
  total_rows: number;
  truncated: boolean;
}

export interface IHistoryItem {
  id: string;
  sql: string;
  engine: string;
  workgroup: string | null;
  state: QueryState;
  duration_ms: number | null;
  bytes_scanned: number | null;
  submitted: string;
  error: string | null;
}

/** A failed call, carrying the service's own words (`{message}`) for the panel to show. */
export class QueryApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'QueryApiError';
  }
}

const PREFIX = 'kumohub/query';

/** Names from the service may be plain strings or `{name}` objects; the panel needs strings. */
function names(items: unknown): string[] {
  if (!Array.isArray(items)) {
    return [];
  }
  return items
    .map(item =>
      typeof item === 'string' ? item : String((item as { name?: unknown })?.name ?? '')
    )
    .filter(name => name !== '');
}

export class QueryApi {
  constructor(private readonly settings = ServerConnection.makeSettings()) {}

  async engines(): Promise<IEngines> {
    const raw = await this.request<Record<string, unknown>>('engines');
    return {
      engines: names(raw.engines),
      default: String(raw.default ?? ''),
      workgroups: names(raw.workgroups),
      default_workgroup: (raw.default_workgroup as string | null) ?? null,
      row_cap: Number(raw.row_cap ?? 0),
      bytes_scanned_limit: (raw.bytes_scanned_limit as number | null) ?? null
    };
  }

  submit(query: ISubmitRequest): Promise<{ id: string; state: QueryState }> {
    return this.request('queries', { method: 'POST', body: JSON.stringify(query) });
  }

  status(id: string): Promise<IQueryStatus> {
    return this.request(`queries/${encodeURIComponent(id)}`);
  }

  results(id: string, offset: number, limit: number): Promise<IResultPage> {
    const query = URLExt.objectToQueryString({ offset, limit });
    return this.request(`queries/${encodeURIComponent(id)}/results${query}`);
  }

  async cancel(id: string): Promise<void> {
    await this.request(`queries/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  async databases(engine?: string): Promise<string[]> {
    const query = engine ? URLExt.objectToQueryString({ engine }) : '';
    const raw = await this.request<{ databases?: unknown }>(`catalog${query}`);
    return names(raw.databases);
  }

  async tables(database: string, engine?: string): Promise<string[]> {
    const query = engine ? URLExt.objectToQueryString({ engine }) : '';
    const raw = await this.request<{ tables?: unknown }>(
      `catalog/${encodeURIComponent(database)}${query}`
    );
    return names(raw.tables);
  }

  async columns(database: string, table: string, engine?: string): Promise<IColumn[]> {
    const query = engine ? URLExt.objectToQueryString({ engine }) : '';
    const raw = await this.request<{ columns?: IColumn[] }>(
      `catalog/${encodeURIComponent(database)}/${encodeURIComponent(table)}${query}`
    );
    return raw.columns ?? [];
  }

  async history(): Promise<IHistoryItem[]> {
    const raw = await this.request<{ items?: IHistoryItem[] }>('history');
    return raw.items ?? [];
  }

  private async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const url = URLExt.join(this.settings.baseUrl, PREFIX, path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new QueryApiError(
        `The query service could not be reached (${(error as Error).message}).`,
        0
      );
    }
    const text = await response.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (!response.ok) {
      const message =
        (body as { message?: string } | null)?.message ||
        `The query service answered ${response.status} ${response.statusText}.`;
      throw new QueryApiError(message, response.status);
    }
    return body as T;
  }
}
