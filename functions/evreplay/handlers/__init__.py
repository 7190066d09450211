"""Lambda entry points. Each module wires one function: parse, call the logic, return."""
