"""The model server of the kit's serving image and of `invoke serve`: one entrypoint for both."""
