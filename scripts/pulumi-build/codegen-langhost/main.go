// Command codegen-langhost is a code-generation-only Pulumi language host.
//
// Pulumi CLI v3.259.0 delegates `pulumi package gen-sdk --language <go|python>`
// to the language host plugin (pulumi-language-go, pulumi-language-python).
// Those hosts live in modules the Go module proxy does not serve, so
// scripts/gen-sdk.sh builds this binary instead and installs it under both
// names in a private directory: it answers only GeneratePackage (every other
// LanguageRuntime call is "unimplemented", so it cannot run programs), using
// the code generators of github.com/pulumi/pulumi/pkg/v3 at the CLI's own
// version (pinned in ../go.mod). The language is taken from the name it is
// started under.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	pygen "github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// codegenVersion is the version of github.com/pulumi/pulumi/pkg/v3 pinned in go.mod.
const codegenVersion = "3.259.0"

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	language string
}

// GetPluginInfo reports the version of the code generators (pkg/v3, as in go.mod).
func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: codegenVersion}, nil
}

func (h *host) GeneratePackage(
	ctx context.Context, req *pulumirpc.GeneratePackageRequest,
) (*pulumirpc.GeneratePackageResponse, error) {
	loader, err := schema.NewLoaderClient(req.LoaderTarget)
	if err != nil {
		return nil, err
	}
	defer loader.Close()

	var spec schema.PackageSpec
	if err := json.Unmarshal([]byte(req.Schema), &spec); err != nil {
		return nil, fmt.Errorf("decoding the schema: %w", err)
	}
	pkg, diags, err := schema.BindSpec(spec, loader, schema.ValidationOptions{})
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("binding the schema: %w", diags)
	}

	var files map[string][]byte
	switch h.language {
	case "go":
		files, err = gogen.GeneratePackage("pulumi-language-go", pkg, req.LocalDependencies)
		for name, data := range req.ExtraFiles {
			if files != nil {
				files[name] = data
			}
		}
	case "python":
		files, err = pygen.GeneratePackage("pulumi-language-python", pkg, req.ExtraFiles, loader)
	default:
		return nil, status.Errorf(codes.Unimplemented, "no code generator for %q", h.language)
	}
	if err != nil {
		return nil, err
	}

	for name, data := range files {
		path := filepath.Join(req.Directory, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.GeneratePackageResponse{}, nil
}

func main() {
	language := strings.TrimPrefix(filepath.Base(os.Args[0]), "pulumi-language-")
	if language != "go" && language != "python" {
		fmt.Fprintf(os.Stderr, "codegen-langhost: start me as pulumi-language-go or pulumi-language-python, not %q\n",
			filepath.Base(os.Args[0]))
		os.Exit(2)
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{language: language})
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "codegen-langhost: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from the first line on stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "codegen-langhost: %v\n", err)
		os.Exit(1)
	}
}
