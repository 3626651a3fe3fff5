// Command codegen-dotnet is a code-generation-only Pulumi language host for .NET.
//
// Pulumi CLI v3.259.0 delegates `pulumi package gen-sdk --language dotnet` to
// the language host plugin pulumi-language-dotnet. That host and the .NET code
// generator now live in github.com/pulumi/pulumi-dotnet, whose modules the Go
// module proxy reachable here does not serve (403 for every version asked), and
// pkg/v3 v3.259.0 no longer contains codegen/dotnet. The generator was frozen
// and deprecated in pkg/v3 before it moved; pkg/v3 v3.228.0 is the last release
// that still contains it, so this separate module pins that release (see
// go.mod) while ../codegen-langhost keeps Go and Python at the CLI's version.
//
// scripts/gen-sdk.sh builds this binary and installs it as
// pulumi-language-dotnet in a private directory: it answers only
// GeneratePackage (every other LanguageRuntime call is "unimplemented", so it
// cannot run programs).
//
// The .NET generator downloads the package logo (the schema's logoUrl, or a
// Pulumi logo on raw.githubusercontent.com when there is none) with
// http.Get. Generation must not depend on the network (nor on what a server
// answers), so the host replaces the default HTTP transport: a schema without
// a logoUrl gets logo.png of this directory (embedded), and every other request
// is refused with an error that says so.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	dotnetgen "github.com/pulumi/pulumi/pkg/v3/codegen/dotnet"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// codegenVersion is the version of github.com/pulumi/pulumi/pkg/v3 pinned in go.mod.
const codegenVersion = "3.228.0"

//go:embed logo.png
var logo []byte

// logoURL is where the generator is sent for the logo when the schema has no logoUrl.
const logoURL = "https://dsops.invalid/codegen-dotnet/logo.png"

// offline answers logoURL from the embedded logo and refuses everything else.
type offline struct{}

func (offline) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.String() != logoURL {
		return nil, fmt.Errorf("codegen-dotnet: no network during code generation (asked for %s); "+
			"leave logoUrl out of the schema to get the embedded logo", req.URL)
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": []string{"image/png"}},
		Body:    io.NopCloser(bytes.NewReader(logo)),
		Request: req, ContentLength: int64(len(logo)),
	}, nil
}

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
}

// GetPluginInfo reports the version of the code generator (pkg/v3, as in go.mod).
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

	if pkg.LogoURL == "" {
		pkg.LogoURL = logoURL
	}
	//nolint:staticcheck // deprecated in pkg/v3 (moved to pulumi-dotnet, which the proxy does not serve)
	files, err := dotnetgen.GeneratePackage("pulumi-language-dotnet", pkg, req.ExtraFiles, req.LocalDependencies)
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
	http.DefaultTransport = offline{}
	http.DefaultClient = &http.Client{Transport: offline{}}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{})
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "codegen-dotnet: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from the first line on stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "codegen-dotnet: %v\n", err)
		os.Exit(1)
	}
}
