/**
 * The SQL editor: CodeMirror 6 with the SQL language and JupyterLab's own editor theme.
 *
 * `@codemirror/state`, `view` and `language` are shared singletons of JupyterLab, so this
 * editor uses the same CodeMirror instance as notebooks (one copy, consistent styling).
 */
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { sql, StandardSQL } from '@codemirror/lang-sql';
import { bracketMatching, syntaxHighlighting } from '@codemirror/language';
import { EditorState, Prec } from '@codemirror/state';
import { EditorView, keymap, lineNumbers, placeholder } from '@codemirror/view';
import { jupyterHighlightStyle, jupyterTheme } from '@jupyterlab/codemirror';
import { Widget } from '@lumino/widgets';

export interface ISqlEditorOptions {
  /** Called on Ctrl/Cmd-Enter. */
  onRun: () => void;
  initial?: string;
}

export class SqlEditor extends Widget {
  readonly view: EditorView;

  constructor(options: ISqlEditorOptions) {
    super();
    this.addClass('kh-SqlEditor');
    this.view = new EditorView({
      parent: this.node,
      state: EditorState.create({
        doc: options.initial ?? '',
        extensions: [
          Prec.highest(
            keymap.of([
              {
                key: 'Mod-Enter',
                run: () => {
                  options.onRun();
                  return true;
                }
              }
            ])
          ),
          lineNumbers(),
          history(),
          bracketMatching(),
          keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
          sql({ dialect: StandardSQL, upperCaseKeywords: true }),
          syntaxHighlighting(jupyterHighlightStyle),
          jupyterTheme,
          placeholder('SELECT … (Ctrl/Cmd-Enter runs the query)'),
          EditorView.lineWrapping
        ]
      })
    });
  }

  get text(): string {
    return this.view.state.doc.toString();
  }

  set text(value: string) {
    this.view.dispatch({
      changes: { from: 0, to: this.view.state.doc.length, insert: value },
      selection: { anchor: value.length }
    });
  }

  /** Insert `text` at the cursor (replacing a selection) and keep typing after it. */
  insertAtCursor(text: string): void {
    const { from, to } = this.view.state.selection.main;
    this.view.dispatch({
      changes: { from, to, insert: text },
      selection: { anchor: from + text.length },
      scrollIntoView: true
    });
    this.view.focus();
  }

  focus(): void {
    this.view.focus();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.view.destroy();
    super.dispose();
  }
}
