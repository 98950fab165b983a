"""VS Code (code-server) in the user server, behind jupyter-server-proxy as `/vscode/`."""
