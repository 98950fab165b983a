/**
 * "Insert as %%athena cell": the panel's way of taking a result further. Instead of a file to
 * download, the query lands in the notebook, where `%%athena` fetches it as a DataFrame.
 */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

export interface IMagicOptions {
  sql: string;
  engine?: string;
  workgroup?: string;
}

/** The cell source: the magic line (with only the options that differ from defaults), then SQL. */
export function athenaCellSource(options: IMagicOptions): string {
  const flags: string[] = [];
  if (options.engine) {
    flags.push(`--engine ${options.engine}`);
  }
  if (options.workgroup) {
    flags.push(`--workgroup ${options.workgroup}`);
  }
  return [['%%athena', ...flags].join(' '), options.sql.trim()].join('\n');
}

/**
 * Add a code cell below the active cell of the current notebook and make it the active cell.
 * Throws with a sentence for the user when there is no notebook to insert into.
 */
export function insertAthenaCell(
  tracker: INotebookTracker,
  options: IMagicOptions
): NotebookPanel {
  const panel = tracker.currentWidget;
  const notebook = panel?.content;
  const model = notebook?.model;
  if (!panel || !notebook || !model) {
    throw new Error('Open a notebook first: the query is inserted below its active cell.');
  }
  if (!options.sql.trim()) {
    throw new Error('Write a query first: there is nothing to insert.');
  }
  const index = notebook.activeCellIndex >= 0 ? notebook.activeCellIndex + 1 : model.cells.length;
  model.sharedModel.insertCell(index, {
    cell_type: 'code',
    source: athenaCellSource(options),
    metadata: {}
  });
  notebook.activeCellIndex = index;
  notebook.deselectAll();
  return panel;
}
