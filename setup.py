"""The project as an egg, for scrapyd-deploy (scrapyd) and shub deploy (Scrapy Cloud).

The egg carries the crawler (plt, with the demo retailer) and the memory
profiles (settings_profiles), and names the settings module Scrapy loads.
"""

from setuptools import find_packages, setup

setup(
    name="plt",
    version="0.1.0",
    packages=find_packages(include=["plt", "plt.*", "settings_profiles"]),
    entry_points={"scrapy": ["settings = plt.settings"]},
)
