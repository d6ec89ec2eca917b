"""One-shot users of a deployment: the requester's job commands, the auditor, `pouw status` and
`pouw report`."""
