"""`talkface benchmark`: speed and memory measured on this machine, against its own limits."""
