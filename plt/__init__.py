"""PLT: a Scrapy crawler of an online retailer that holds a hard memory budget."""
