"""snodo: the shared record of the pool territoriali of an Ambito territoriale."""
