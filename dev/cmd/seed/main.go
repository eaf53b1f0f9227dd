// Command seed (re)generates the products_manager catalog: the schema (idempotent), then N
// products, N/100 suppliers (at least 10), about 200 categories and the product-supplier links,
// deterministic for a given N. It prints a one-line summary on stdout and JSON logs on stderr.
//
//	seed [-products N] [-database-url URL] [-if-empty] [-schema FILE] [-schema-only]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/dev/seed"
)

const defaultURL = "postgres://postgres@127.0.0.1:55432/products_manager?sslmode=disable"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run() error {
	url := os.Getenv("CATALOG_DATABASE_URL")
	if url == "" {
		url = defaultURL
	}
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	products := fs.Int("products", 100000, "number of products to generate")
	dbURL := fs.String("database-url", url, "catalog database URL (default: $CATALOG_DATABASE_URL, else the local stack)")
	ifEmpty := fs.Bool("if-empty", false, "do nothing when the products table already has rows")
	schemaPath := fs.String("schema", "", "DDL file to apply instead of the embedded dev/sql/catalog.sql")
	schemaOnly := fs.Bool("schema-only", false, "apply the schema and load nothing")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	verbose := fs.Bool("v", false, "debug logs (each index rebuilt, with its time)")
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *products < 0 {
		return fmt.Errorf("-products must be >= 0, got %d", *products)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	var schema string
	if *schemaPath != "" {
		b, err := os.ReadFile(*schemaPath)
		if err != nil {
			return fmt.Errorf("reading the schema: %w", err)
		}
		schema = string(b)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	cfg, err := pgx.ParseConfig(*dbURL)
	if err != nil {
		return fmt.Errorf("parsing -database-url: %w", err)
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	ccancel()
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", where, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if *ifEmpty {
		has, err := seed.HasProducts(ctx, conn)
		if err != nil {
			return err
		}
		if has {
			log.Info("seed: products already present, nothing to do", "database", where)
			fmt.Printf("catalog at %s already has products: nothing done (-if-empty)\n", where)
			return nil
		}
	}
	if *schemaOnly {
		if err := seed.ApplySchema(ctx, conn, schema); err != nil {
			return err
		}
		log.Info("seed: schema applied", "database", where)
		fmt.Printf("schema applied to %s\n", where)
		return nil
	}

	log.Info("seed: starting", "database", where, "products", *products)
	st, err := seed.Seed(ctx, conn, seed.Config{Products: *products, Schema: schema, Logger: log})
	if err != nil {
		return err
	}
	fmt.Printf("seeded %s: products=%d suppliers=%d categories=%d links=%d elapsed=%.2fs\n",
		where, st.Products, st.Suppliers, st.Categories, st.Links, st.Elapsed.Seconds())
	return nil
}
