"""Who may do what: permissions, roles (built-in and custom) and contact masking."""
