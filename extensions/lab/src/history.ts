/** The user's query history (kept by the service in their home); a click reloads the SQL. */
import { Widget } from '@lumino/widgets';

import { IHistoryItem, QueryApi } from './api';
import { firstLine, formatBytes, formatDuration } from './format';

export interface IHistoryOptions {
  api: QueryApi;
  onSelect: (item: IHistoryItem) => void;
  onError: (message: string) => void;
}

export class HistoryList extends Widget {
  private readonly list = document.createElement('ol');

  constructor(private readonly options: IHistoryOptions) {
    super();
    this.addClass('kh-History');
    const header = document.createElement('div');
    header.className = 'kh-SectionHeader';
    header.textContent = 'History';
    this.list.className = 'kh-History-list';
    this.list.setAttribute('aria-label', 'Query history');
    this.node.append(header, this.list);
  }

  async refresh(): Promise<void> {
    let items: IHistoryItem[];
    try {
      items = await this.options.api.history();
    } catch (error) {
      this.options.onError(`History: ${(error as Error).message}`);
      return;
    }
    if (!items.length) {
      const empty = document.createElement('li');
      empty.className = 'kh-Tree-note';
      empty.textContent = 'No queries yet.';
      this.list.replaceChildren(empty);
      return;
    }
    this.list.replaceChildren(...items.map(item => this.entry(item)));
  }

  private entry(item: IHistoryItem): HTMLLIElement {
    const li = document.createElement('li');
    li.className = 'kh-History-item';
    li.dataset.state = item.state;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'kh-History-button';
    button.title = item.error ? `${item.sql}\n\n${item.error}` : item.sql;
    const sql = document.createElement('span');
    sql.className = 'kh-History-sql';
    sql.textContent = firstLine(item.sql);
    const meta = document.createElement('span');
    meta.className = 'kh-History-meta';
    const when = item.submitted ? new Date(item.submitted) : null;
    meta.textContent = [
      item.state.toLowerCase(),
      item.engine,
      formatDuration(item.duration_ms),
      formatBytes(item.bytes_scanned),
      when && !Number.isNaN(when.getTime()) ? when.toLocaleString() : ''
    ]
      .filter(Boolean)
      .join(' · ');
    button.append(sql, meta);
    button.addEventListener('click', () => this.options.onSelect(item));
    li.appendChild(button);
    return li;
  }
}
