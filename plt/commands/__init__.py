"""Scrapy project commands (COMMANDS_MODULE = "plt.commands")."""
