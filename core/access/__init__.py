"""Who may do what: analytics accounts, their admin users and Data API tokens (`accounts`), the admin sign-in
with its brake on password guessing (`login`), and the rule that every lookup by id is scoped to the
caller's account (`ownership`)."""
