"""Small constructs the stacks share (not named `constructs`: that would shadow the library)."""
