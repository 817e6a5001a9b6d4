//! datagen: owns the shop's DDL, fills it with realistic fake data, and simulates shoppers.
