/**
 * The result grid: one page of rows as a plain table, column types under the names, and a
 * pager. It only ever holds the page on screen (never the whole result), and it pages no
 * further than the row cap the service announces.
 */
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { IResultPage } from './api';
import { cellText, formatCount } from './format';

export class ResultGrid extends Widget {
  /** Emits the offset of the page the user asked for. */
  readonly pageRequested = new Signal<this, number>(this);

  private readonly tableHost = document.createElement('div');
  private readonly summary = document.createElement('span');
  private readonly previous = document.createElement('button');
  private readonly next = document.createElement('button');
  private page: IResultPage | null = null;
  private rowCap = 0;

  constructor() {
    super();
    this.addClass('kh-ResultGrid');
    this.tableHost.className = 'kh-ResultGrid-table';
    const pager = document.createElement('div');
    pager.className = 'kh-ResultGrid-pager';
    this.summary.className = 'kh-ResultGrid-summary';
    for (const [button, label, title] of [
      [this.previous, '‹ Previous', 'Previous page'],
      [this.next, 'Next ›', 'Next page']
    ] as const) {
      button.type = 'button';
      button.className = 'jp-Button jp-mod-styled jp-mod-reject kh-ResultGrid-pageButton';
      button.textContent = label;
      button.title = title;
    }
    this.previous.addEventListener('click', () => this.go(-1));
    this.next.addEventListener('click', () => this.go(1));
    pager.append(this.summary, this.previous, this.next);
    this.node.append(this.tableHost, pager);
    this.clear();
  }

  /** The number of rows the panel may show: the service's cap, or everything when 0. */
  private get shownTotal(): number {
    if (!this.page) {
      return 0;
    }
    return this.rowCap > 0 ? Math.min(this.page.total_rows, this.rowCap) : this.page.total_rows;
  }

  clear(message = 'Run a query to see its results here.'): void {
    this.page = null;
    this.tableHost.replaceChildren(Object.assign(document.createElement('p'), {
      className: 'kh-ResultGrid-empty',
      textContent: message
    }));
    this.summary.textContent = '';
    this.previous.disabled = true;
    this.next.disabled = true;
  }

  render(page: IResultPage, rowCap: number): void {
    this.page = page;
    this.rowCap = rowCap;
    const table = document.createElement('table');
    table.className = 'kh-ResultGrid-grid';
    const head = table.createTHead().insertRow();
    const corner = document.createElement('th');
    corner.className = 'kh-ResultGrid-rowNumber';
    corner.textContent = '#';
    head.appendChild(corner);
    for (const column of page.columns) {
      const th = document.createElement('th');
      th.dataset.type = column.type;
      const name = document.createElement('span');
      name.className = 'kh-ResultGrid-columnName';
      name.textContent = column.name;
      const type = document.createElement('span');
      type.className = 'kh-ResultGrid-columnType';
      type.textContent = column.type;
      th.append(name, type);
      head.appendChild(th);
    }
    const body = table.createTBody();
    const visible = Math.max(0, Math.min(page.rows.length, this.shownTotal - page.offset));
    page.rows.slice(0, visible).forEach((row, index) => {
      const tr = body.insertRow();
      const number = tr.insertCell();
      number.className = 'kh-ResultGrid-rowNumber';
      number.textContent = formatCount(page.offset + index + 1);
      row.forEach((value, columnIndex) => {
        const td = tr.insertCell();
        const text = cellText(value);
        const type = page.columns[columnIndex]?.type ?? '';
        if (text === null) {
          td.className = 'kh-ResultGrid-null';
          td.textContent = 'NULL';
        } else {
          td.textContent = text;
          if (isNumericType(type)) {
            td.classList.add('kh-ResultGrid-number');
          }
        }
      });
    });
    this.tableHost.replaceChildren(table);
    this.tableHost.scrollTop = 0;

    const total = this.shownTotal;
    const first = total === 0 ? 0 : page.offset + 1;
    const last = page.offset + visible;
    let text = `Rows ${formatCount(first)}–${formatCount(last)} of ${formatCount(total)}`;
    if (page.truncated || (this.rowCap > 0 && page.total_rows > this.rowCap)) {
      text += ` (the panel shows at most ${formatCount(this.rowCap)} rows; use a %%athena cell for all of them)`;
    }
    this.summary.textContent = text;
    this.previous.disabled = page.offset <= 0;
    this.next.disabled = last >= total;
  }

  /** After a page failed to load: let the user try again from the page still on screen. */
  restorePager(): void {
    if (this.page) {
      this.render(this.page, this.rowCap);
    }
  }

  private go(direction: -1 | 1): void {
    if (!this.page) {
      return;
    }
    const size = Math.max(1, this.page.limit);
    const offset = Math.max(0, this.page.offset + direction * size);
    if (offset < this.shownTotal) {
      // One page at a time: the buttons come back with the page (or restorePager).
      this.previous.disabled = true;
      this.next.disabled = true;
      this.pageRequested.emit(offset);
    }
  }
}

function isNumericType(type: string): boolean {
  return /^(tinyint|smallint|int|integer|bigint|hugeint|real|float|double|decimal|numeric|ubigint|uinteger|usmallint|utinyint)/i.test(
    type
  );
}
