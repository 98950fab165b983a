/**
 * KumoHub's JupyterLab extension.
 *
 * Adds the Athena query panel (command, launcher card, palette entry). Its package.json also
 * disables JupyterLab's download, export and open-in-browser-tab plugins, so the same install
 * that brings the panel removes those paths from the UI.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import athenaSvg from '../style/icons/athena.svg';
import { insertAthenaCell } from './notebook';
import { QueryPanel } from './panel';

const PLUGIN_ID = '@kumohub/lab:query-panel';

export const athenaIcon = new LabIcon({ name: 'kumohub:athena', svgstr: athenaSvg });

export namespace CommandIDs {
  export const open = 'kumohub-query:open';
  export const run = 'kumohub-query:run';
  export const insertCell = 'kumohub-query:insert-cell';
}

const queryPanelPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The Athena query panel: catalog, SQL editor, results, history.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILauncher, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null
  ) => {
    const tracker = new WidgetTracker<MainAreaWidget<QueryPanel>>({ namespace: 'kumohub-query' });
    const current = () => tracker.currentWidget?.content ?? null;

    const create = () => {
      const content = new QueryPanel({
        insertCell: options => {
          const panel = insertAthenaCell(notebooks, options);
          app.shell.activateById(panel.id);
        }
      });
      const widget = new MainAreaWidget({ content });
      widget.id = 'kumohub-query-panel';
      widget.title.label = 'Athena';
      widget.title.caption = 'Query data with Athena (DuckDB in local mode)';
      widget.title.icon = athenaIcon;
      widget.title.closable = true;
      widget.addClass('kh-QueryPanelWidget');
      return widget;
    };

    app.commands.addCommand(CommandIDs.open, {
      label: args => (args['isPalette'] ? 'Open Athena Query Panel' : 'Athena'),
      caption: 'Open the SQL query panel (catalog, results, history)',
      icon: args => (args['isPalette'] ? undefined : athenaIcon),
      execute: async () => {
        let widget = tracker.currentWidget;
        if (!widget || widget.isDisposed) {
          widget = create();
          await tracker.add(widget);
        }
        if (!widget.isAttached) {
          app.shell.add(widget, 'main');
        }
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    app.commands.addCommand(CommandIDs.run, {
      label: 'Run Athena Query',
      caption: 'Run the query in the Athena panel',
      isEnabled: () => current() !== null,
      execute: () => current()?.run()
    });

    app.commands.addCommand(CommandIDs.insertCell, {
      label: 'Insert Athena Query as %%athena Cell',
      caption: 'Add the panel’s query below the active cell of the current notebook',
      isEnabled: () => current() !== null,
      execute: () => current()?.insertIntoNotebook()
    });

    if (palette) {
      for (const command of Object.values(CommandIDs)) {
        palette.addItem({ command, category: 'KumoHub', args: { isPalette: true } });
      }
    }
    if (launcher) {
      launcher.add({ command: CommandIDs.open, category: 'Other', rank: 0 });
    }
    if (restorer) {
      void restorer.restore(tracker, { command: CommandIDs.open, name: () => 'kumohub-query' });
    }
  }
};

export default [queryPanelPlugin];
