"""One URLconf per benchmark variant; a server mounts exactly one of them."""
