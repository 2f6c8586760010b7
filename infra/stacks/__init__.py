"""One module per stack; each takes the typed Environment plus typed objects from other stacks."""
