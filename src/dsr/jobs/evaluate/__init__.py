"""`dsr eval`: the pipelines it compares, one evaluation run over them, and its report."""
