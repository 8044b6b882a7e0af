"""Resource providers: each module registers its routes and operation completions on a Router/Services pair."""
