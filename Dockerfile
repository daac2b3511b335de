# Wharf in a container; used by docker-compose.yml.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/wharf /usr/local/bin/wharf
EXPOSE 5000
CMD ["wharf", "serve", "--listen", "0.0.0.0:5000"]
