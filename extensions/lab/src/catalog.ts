/**
 * The catalog tree: databases → tables → columns, each level loaded when opened (catalogs
 * on Athena are large). Clicking a name inserts it into the editor at the cursor; the
 * caret opens or closes a level.
 */
import { Widget } from '@lumino/widgets';

import { QueryApi } from './api';
import { quoteIdentifier } from './format';

export interface ICatalogOptions {
  api: QueryApi;
  engine: () => string;
  onInsert: (text: string) => void;
  onError: (message: string) => void;
}

export class CatalogTree extends Widget {
  private readonly list = document.createElement('ul');

  constructor(private readonly options: ICatalogOptions) {
    super();
    this.addClass('kh-Catalog');
    const header = document.createElement('div');
    header.className = 'kh-SectionHeader';
    const title = document.createElement('span');
    title.textContent = 'Catalog';
    const refresh = document.createElement('button');
    refresh.type = 'button';
    refresh.className = 'kh-LinkButton';
    refresh.textContent = 'Refresh';
    refresh.title = 'Reload the list of databases';
    refresh.addEventListener('click', () => void this.refresh());
    header.append(title, refresh);
    this.list.className = 'kh-Tree';
    this.list.setAttribute('role', 'tree');
    this.list.setAttribute('aria-label', 'Catalog');
    this.node.append(header, this.list);
  }

  async refresh(): Promise<void> {
    this.list.replaceChildren(note('Loading databases…'));
    try {
      const databases = await this.options.api.databases(this.options.engine());
      this.list.replaceChildren(
        ...(databases.length
          ? databases.map(database =>
              this.node_(database, 'database', quoteIdentifier(database), ul =>
                this.loadTables(database, ul)
              )
            )
          : [note('No databases.')])
      );
    } catch (error) {
      this.list.replaceChildren(note('The catalog could not be loaded.'));
      this.options.onError(`Catalog: ${(error as Error).message}`);
    }
  }

  private async loadTables(database: string, into: HTMLUListElement): Promise<void> {
    const tables = await this.options.api.tables(database, this.options.engine());
    into.replaceChildren(
      ...(tables.length
        ? tables.map(table =>
            this.node_(
              table,
              'table',
              `${quoteIdentifier(database)}.${quoteIdentifier(table)}`,
              ul => this.loadColumns(database, table, ul)
            )
          )
        : [note('No tables.')])
    );
  }

  private async loadColumns(database: string, table: string, into: HTMLUListElement) {
    const columns = await this.options.api.columns(database, table, this.options.engine());
    into.replaceChildren(
      ...(columns.length
        ? columns.map(column => {
            const li = this.node_(column.name, 'column', quoteIdentifier(column.name));
            const type = document.createElement('span');
            type.className = 'kh-Tree-type';
            type.textContent = column.type;
            li.querySelector('.kh-Tree-row')?.appendChild(type);
            return li;
          })
        : [note('No columns.')])
    );
  }

  /** One tree item; `load` fills its children the first time it is opened. */
  private node_(
    name: string,
    kind: 'database' | 'table' | 'column',
    insertText: string,
    load?: (children: HTMLUListElement) => Promise<void>
  ): HTMLLIElement {
    const li = document.createElement('li');
    li.className = `kh-Tree-item kh-Tree-${kind}`;
    li.setAttribute('role', 'treeitem');
    li.dataset.name = name;
    const row = document.createElement('div');
    row.className = 'kh-Tree-row';
    const caret = document.createElement('button');
    caret.type = 'button';
    caret.className = 'kh-Tree-caret';
    const label = document.createElement('button');
    label.type = 'button';
    label.className = 'kh-Tree-label';
    label.textContent = name;
    label.title = `Insert ${insertText} at the cursor`;
    label.addEventListener('click', () => this.options.onInsert(insertText));
    row.append(caret, label);
    li.appendChild(row);

    if (!load) {
      caret.disabled = true;
      caret.classList.add('kh-mod-leaf');
      return li;
    }
    const children = document.createElement('ul');
    children.className = 'kh-Tree-children';
    children.setAttribute('role', 'group');
    children.hidden = true;
    li.appendChild(children);
    li.setAttribute('aria-expanded', 'false');
    caret.title = `Show the ${kind === 'database' ? 'tables' : 'columns'} of ${name}`;
    let loaded = false;
    caret.addEventListener('click', async () => {
      const open = children.hidden;
      children.hidden = !open;
      li.setAttribute('aria-expanded', String(open));
      if (open && !loaded) {
        loaded = true;
        children.replaceChildren(note('Loading…'));
        try {
          await load(children);
        } catch (error) {
          loaded = false;
          children.replaceChildren(note('Could not be loaded.'));
          this.options.onError(`Catalog: ${(error as Error).message}`);
        }
      }
    });
    return li;
  }
}

function note(text: string): HTMLLIElement {
  const li = document.createElement('li');
  li.className = 'kh-Tree-note';
  li.textContent = text;
  return li;
}
