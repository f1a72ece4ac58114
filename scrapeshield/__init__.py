"""scrapeshield: protects personal data on social platforms from mass scraping."""
