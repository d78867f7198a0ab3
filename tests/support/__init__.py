"""One support package for every layer of tests: a whole line, databases, proxies, stand-ins."""
