// A Pulumi Go program using dsops through the provider plugin (pulumi-resource-dsops)
// and the Go SDK generated from schema.json (sdk-gen/go).
//
// Stack config (all optional): windowDuration (default 4h), rotateEvery (default 30d),
// env (the dsops.yaml env to resolve, default app).
// Provider config: dsops:configFile (e.g. dsops.yaml, which names the store `local`
// and the PostgreSQL service `app-db`).
package main

import (
	"github.com/dsops/pulumi/sdk-gen/go/dsops"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg := config.New(ctx, "")
		duration := cfg.Get("windowDuration")
		if duration == "" {
			duration = "4h"
		}
		every := cfg.Get("rotateEvery")
		if every == "" {
			every = "30d"
		}
		env := cfg.Get("env")
		if env == "" {
			env = "app"
		}

		// A secret in a store: Value is always a Pulumi secret.
		token, err := dsops.NewSecretReference(ctx, "token", &dsops.SecretReferenceArgs{
			Ref: pulumi.String("store://local/app/token"),
		})
		if err != nil {
			return err
		}

		// When rotations may run.
		window, err := dsops.NewMaintenanceWindow(ctx, "window", &dsops.MaintenanceWindowArgs{
			Schedule: pulumi.String("0 2 * * 0"),
			Duration: pulumi.String(duration),
			Timezone: pulumi.String("Europe/Berlin"),
		})
		if err != nil {
			return err
		}

		// The password of the PostgreSQL role app_a, rotated every `rotateEvery`,
		// only while the window is open.
		login, err := dsops.NewRotationPolicy(ctx, "login", &dsops.RotationPolicyArgs{
			Secret:   pulumi.String("store://local/app/db-login"),
			Target:   pulumi.String("app-db"),
			User:     pulumi.String("app_a"),
			Strategy: pulumi.String("single-user"),
			Schedule: dsops.RotationScheduleArgs{Every: pulumi.String(every)},
			Windows: dsops.WindowConfigArray{dsops.WindowConfigArgs{
				Schedule: window.Schedule,
				Duration: window.Duration,
				Timezone: window.Timezone,
			}},
		})
		if err != nil {
			return err
		}

		// A whole env of dsops.yaml: Variables is a secret map.
		app, err := dsops.NewEnvironment(ctx, "app", &dsops.EnvironmentArgs{
			ConfigFile: pulumi.String("dsops.yaml"),
			Env:        pulumi.String(env),
		})
		if err != nil {
			return err
		}

		fetched := dsops.GetSecretOutput(ctx, dsops.GetSecretOutputArgs{Ref: pulumi.String("store://local/app/token")})

		ctx.Export("token", token.Value)
		ctx.Export("tokenVersion", token.VersionId)
		ctx.Export("fetched", fetched.Value())
		ctx.Export("windowOpen", window.IsOpen)
		ctx.Export("nextOpenAt", window.NextOpenAt)
		ctx.Export("password", login.Value)
		ctx.Export("status", login.Status)
		ctx.Export("nextDueAt", login.NextDueAt)
		ctx.Export("variables", app.Variables)
		return nil
	})
}
