# front end 3: apbundle-shell, paged n-gram shell completion (issue 6).
