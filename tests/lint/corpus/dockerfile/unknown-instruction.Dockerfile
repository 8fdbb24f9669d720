FROM debian:12
RUNN echo typo
