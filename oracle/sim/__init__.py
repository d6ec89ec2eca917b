"""In-process plays of the whole protocol: `pouw demo` and `ape run simulate`."""
