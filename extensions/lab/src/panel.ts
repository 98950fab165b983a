/**
 * The Athena panel: catalog and history on the left; engine and workgroup, the SQL editor,
 * live progress and the result grid on the right. Results only ever go to the screen (one
 * page at a time) or, as SQL, into a notebook cell; the panel offers no download.
 */
import { Panel, SplitPanel, Widget } from '@lumino/widgets';

import { FINAL_STATES, IEngines, IHistoryItem, IQueryStatus, QueryApi, QueryState } from './api';
import { CatalogTree } from './catalog';
import { SqlEditor } from './editor';
import { formatBytes, formatCount, formatDuration } from './format';
import { ResultGrid } from './grid';
import { HistoryList } from './history';

export const PAGE_SIZE = 100;
const FIRST_POLL_MS = 200;
const MAX_POLL_MS = 1000;

export interface IQueryPanelOptions {
  api?: QueryApi;
  /** Put a query into the current notebook; throws with a sentence when it cannot. */
  insertCell: (options: { sql: string; engine?: string; workgroup?: string }) => void;
}

const STATE_WORDS: Record<QueryState, string> = {
  QUEUED: 'Queued',
  RUNNING: 'Running',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled'
};

export class QueryPanel extends SplitPanel {
  readonly editor: SqlEditor;
  private readonly api: QueryApi;
  private readonly catalog: CatalogTree;
  private readonly history: HistoryList;
  private readonly grid = new ResultGrid();
  private readonly engineSelect = document.createElement('select');
  private readonly workgroupSelect = document.createElement('select');
  private readonly workgroupLabel = document.createElement('label');
  private readonly runButton = document.createElement('button');
  private readonly cancelButton = document.createElement('button');
  private readonly insertButton = document.createElement('button');
  private readonly limits = document.createElement('span');
  private readonly stateBadge = document.createElement('span');
  private readonly elapsed = document.createElement('span');
  private readonly scanned = document.createElement('span');
  private readonly rows = document.createElement('span');
  private readonly errorBox = document.createElement('div');
  private engines: IEngines | null = null;
  /** null: idle; '': submitted, id not known yet; otherwise the running query's id. */
  private currentId: string | null = null;
  private cancelWhenKnown = false;
  private startedAt = 0;
  private ticker: number | null = null;

  constructor(private readonly options: IQueryPanelOptions) {
    super({ orientation: 'horizontal', spacing: 1 });
    this.addClass('kh-QueryPanel');
    this.api = options.api ?? new QueryApi();
    this.editor = new SqlEditor({ onRun: () => void this.run() });
    this.catalog = new CatalogTree({
      api: this.api,
      engine: () => this.engineSelect.value,
      onInsert: text => this.editor.insertAtCursor(text),
      onError: message => this.showError(message)
    });
    this.history = new HistoryList({
      api: this.api,
      onSelect: item => this.loadFromHistory(item),
      onError: message => this.showError(message)
    });

    const side = new Panel();
    side.addClass('kh-QueryPanel-side');
    side.addWidget(this.catalog);
    side.addWidget(this.history);

    // A column laid out by CSS flex: controls, editor and status take their own height,
    // the grid takes the rest.
    const main = new Panel();
    main.addClass('kh-QueryPanel-main');
    main.addWidget(new Widget({ node: this.buildControls() }));
    main.addWidget(this.editor);
    main.addWidget(new Widget({ node: this.buildStatus() }));
    main.addWidget(this.grid);

    this.addWidget(side);
    this.addWidget(main);
    this.setRelativeSizes([1, 3]);
    this.grid.pageRequested.connect((_, offset) => void this.loadPage(offset));
    this.setRunning(false);
    void this.initialize();
  }

  /** Run what is in the editor, follow it to the end, then show the first page. */
  async run(): Promise<void> {
    if (this.currentId !== null) {
      return;
    }
    const sql = this.editor.text.trim();
    if (!sql) {
      this.showError('Write a query first.');
      return;
    }
    this.clearError();
    this.grid.clear('Waiting for the query to finish…');
    this.renderProgress({ state: 'QUEUED', elapsed_ms: 0, bytes_scanned: null, row_count: null });
    this.currentId = '';
    this.cancelWhenKnown = false;
    this.setRunning(true);
    try {
      const { id } = await this.api.submit({
        sql,
        engine: this.engineSelect.value || undefined,
        workgroup: this.workgroupLabel.hidden ? undefined : this.workgroupSelect.value || undefined
      });
      this.currentId = id;
      this.node.dataset.queryId = id;
      if (this.cancelWhenKnown) {
        void this.cancel();
      }
      await this.follow(id);
    } catch (error) {
      this.renderState('FAILED');
      this.grid.clear('No results.');
      this.showError((error as Error).message);
    } finally {
      this.currentId = null;
      this.setRunning(false);
      void this.history.refresh();
    }
  }

  /** Ask the engine to stop the running query; polling reports when it has. */
  async cancel(): Promise<void> {
    const id = this.currentId;
    if (id === null) {
      return;
    }
    this.cancelButton.disabled = true;
    this.cancelButton.textContent = 'Cancelling…';
    if (id === '') {
      // Cancel pressed while the query is being submitted: cancel as soon as it has an id.
      this.cancelWhenKnown = true;
      return;
    }
    try {
      await this.api.cancel(id);
    } catch (error) {
      this.showError(`Cancel: ${(error as Error).message}`);
      this.cancelButton.disabled = false;
    }
  }

  insertIntoNotebook(): void {
    this.clearError();
    const engine = this.engineSelect.value;
    const workgroup = this.workgroupLabel.hidden ? '' : this.workgroupSelect.value;
    try {
      this.options.insertCell({
        sql: this.editor.text,
        engine: engine && engine !== this.engines?.default ? engine : undefined,
        workgroup:
          workgroup && workgroup !== this.engines?.default_workgroup ? workgroup : undefined
      });
    } catch (error) {
      this.showError((error as Error).message);
    }
  }

  dispose(): void {
    this.stopTicker();
    super.dispose();
  }

  protected onActivateRequest(): void {
    this.editor.focus();
  }

  private async initialize(): Promise<void> {
    try {
      this.engines = await this.api.engines();
    } catch (error) {
      this.showError(`The query service is not available: ${(error as Error).message}`);
      return;
    }
    const { engines, workgroups, row_cap, bytes_scanned_limit } = this.engines;
    this.engineSelect.replaceChildren(...engines.map(name => new Option(name, name)));
    this.engineSelect.value = this.engines.default || engines[0] || '';
    this.workgroupSelect.replaceChildren(...workgroups.map(name => new Option(name, name)));
    this.workgroupSelect.value = this.engines.default_workgroup ?? workgroups[0] ?? '';
    this.updateWorkgroupVisibility();
    const limits = [`Shows up to ${formatCount(row_cap)} rows`];
    if (bytes_scanned_limit) {
      limits.push(`scan limit ${formatBytes(bytes_scanned_limit)}`);
    }
    this.limits.textContent = limits.join(' · ');
    this.setRunning(false);
    await Promise.all([this.catalog.refresh(), this.history.refresh()]);
  }

  private buildControls(): HTMLElement {
    const bar = document.createElement('div');
    bar.className = 'kh-QueryPanel-controls';

    const engineLabel = document.createElement('label');
    engineLabel.textContent = 'Engine ';
    this.engineSelect.className = 'jp-mod-styled kh-QueryPanel-engine';
    this.engineSelect.setAttribute('aria-label', 'Engine');
    this.engineSelect.addEventListener('change', () => {
      this.updateWorkgroupVisibility();
      void this.catalog.refresh();
    });
    engineLabel.appendChild(this.engineSelect);

    this.workgroupLabel.textContent = 'Workgroup ';
    this.workgroupSelect.className = 'jp-mod-styled kh-QueryPanel-workgroup';
    this.workgroupSelect.setAttribute('aria-label', 'Workgroup');
    this.workgroupLabel.appendChild(this.workgroupSelect);

    const button = (node: HTMLButtonElement, label: string, title: string, accept: boolean) => {
      node.type = 'button';
      node.className = `jp-Button jp-mod-styled ${accept ? 'jp-mod-accept' : 'jp-mod-reject'}`;
      node.textContent = label;
      node.title = title;
    };
    button(this.runButton, 'Run', 'Run the query (Ctrl/Cmd-Enter)', true);
    this.runButton.classList.add('kh-QueryPanel-run');
    this.runButton.addEventListener('click', () => void this.run());
    button(this.cancelButton, 'Cancel', 'Stop the running query on the engine', false);
    this.cancelButton.classList.add('kh-QueryPanel-cancel');
    this.cancelButton.addEventListener('click', () => void this.cancel());
    button(
      this.insertButton,
      'Insert as %%athena cell',
      'Add this query below the active cell of the current notebook',
      false
    );
    this.insertButton.classList.add('kh-QueryPanel-insert');
    this.insertButton.addEventListener('click', () => this.insertIntoNotebook());

    this.limits.className = 'kh-QueryPanel-limits';
    bar.append(
      engineLabel,
      this.workgroupLabel,
      this.runButton,
      this.cancelButton,
      this.insertButton,
      this.limits
    );
    return bar;
  }

  private buildStatus(): HTMLElement {
    const status = document.createElement('div');
    status.className = 'kh-QueryPanel-status';
    status.setAttribute('aria-live', 'polite');
    this.stateBadge.className = 'kh-QueryPanel-state';
    this.elapsed.className = 'kh-QueryPanel-elapsed';
    this.scanned.className = 'kh-QueryPanel-scanned';
    this.rows.className = 'kh-QueryPanel-rows';
    this.errorBox.className = 'kh-QueryPanel-error';
    this.errorBox.setAttribute('role', 'alert');
    this.errorBox.hidden = true;
    const line = document.createElement('div');
    line.className = 'kh-QueryPanel-progress';
    line.append(this.stateBadge, this.elapsed, this.scanned, this.rows);
    status.append(line, this.errorBox);
    return status;
  }

  /** Workgroups belong to Athena; other engines (DuckDB in local mode) have none. */
  private updateWorkgroupVisibility(): void {
    const engine = this.engineSelect.value.toLowerCase();
    this.workgroupLabel.hidden = !this.workgroupSelect.options.length || engine !== 'athena';
  }

  private async follow(id: string): Promise<void> {
    let delay = FIRST_POLL_MS;
    this.startTicker();
    try {
      for (;;) {
        const status = await this.api.status(id);
        if (this.isDisposed) {
          return;
        }
        this.renderProgress(status);
        if (FINAL_STATES.has(status.state)) {
          this.stopTicker();
          this.renderProgress(status);
          if (status.state === 'SUCCEEDED') {
            await this.loadPage(0, id);
          } else if (status.state === 'FAILED') {
            this.grid.clear('No results.');
            this.showError(status.error || 'The query failed; the engine gave no reason.');
          } else {
            this.grid.clear('The query was cancelled.');
          }
          return;
        }
        await new Promise(resolve => setTimeout(resolve, delay));
        delay = Math.min(MAX_POLL_MS, Math.round(delay * 1.5));
      }
    } finally {
      this.stopTicker();
    }
  }

  private async loadPage(offset: number, id = this.node.dataset.queryId): Promise<void> {
    if (!id) {
      return;
    }
    try {
      const page = await this.api.results(id, offset, PAGE_SIZE);
      this.grid.render(page, this.engines?.row_cap ?? 0);
    } catch (error) {
      this.showError(`Results: ${(error as Error).message}`);
      this.grid.restorePager();
    }
  }

  private loadFromHistory(item: IHistoryItem): void {
    this.editor.text = item.sql;
    if (Array.from(this.engineSelect.options).some(option => option.value === item.engine)) {
      this.engineSelect.value = item.engine;
      this.updateWorkgroupVisibility();
    }
    if (
      item.workgroup &&
      Array.from(this.workgroupSelect.options).some(option => option.value === item.workgroup)
    ) {
      this.workgroupSelect.value = item.workgroup;
    }
    this.editor.focus();
  }

  private renderProgress(
    status: Pick<IQueryStatus, 'state' | 'elapsed_ms' | 'bytes_scanned' | 'row_count'>
  ): void {
    this.renderState(status.state);
    if (status.elapsed_ms !== null && status.elapsed_ms !== undefined) {
      this.startedAt = Date.now() - status.elapsed_ms;
      this.elapsed.textContent = `Elapsed ${formatDuration(status.elapsed_ms)}`;
    }
    this.scanned.textContent = `Data scanned ${formatBytes(status.bytes_scanned)}`;
    this.rows.textContent =
      status.row_count === null || status.row_count === undefined
        ? ''
        : `${formatCount(status.row_count)} rows`;
  }

  private renderState(state: QueryState): void {
    this.stateBadge.textContent = STATE_WORDS[state] ?? state;
    this.stateBadge.dataset.state = state;
    this.node.dataset.state = state;
  }

  /** Between polls the elapsed time keeps counting on screen. */
  private startTicker(): void {
    this.stopTicker();
    this.startedAt = Date.now();
    this.ticker = window.setInterval(() => {
      this.elapsed.textContent = `Elapsed ${formatDuration(Date.now() - this.startedAt)}`;
    }, 100);
  }

  private stopTicker(): void {
    if (this.ticker !== null) {
      window.clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  private setRunning(running: boolean): void {
    this.runButton.disabled = running || !this.engines;
    this.cancelButton.disabled = !running;
    this.cancelButton.textContent = 'Cancel';
    this.node.classList.toggle('kh-mod-running', running);
  }

  private showError(message: string): void {
    this.errorBox.textContent = message;
    this.errorBox.hidden = false;
  }

  private clearError(): void {
    this.errorBox.textContent = '';
    this.errorBox.hidden = true;
  }
}
