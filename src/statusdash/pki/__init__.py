"""Our own certificate authority, by job: ``check`` reads and diagnoses a certificate, ``vault``
is the vault's layout and what it holds, ``ca`` issues and revokes."""
