"""Who may call the API: SigV4 verification, API keys and what each key may do."""
