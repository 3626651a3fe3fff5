// Resolve secrets from every store and rotate the credentials behind them, as Pulumi resources.
package dsops
