"""The reliability and safety suite: shadowguard cannot hurt the application it watches."""
