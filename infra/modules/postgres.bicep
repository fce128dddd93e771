// Azure Database for PostgreSQL Flexible Server with Microsoft Entra sign-in, the built-in
// PgBouncer in transaction mode and the application database.
//
// Database principals: the Entra administrator below is created by ARM (the administrators
// resource makes it a member of azure_pg_admin). The app's managed identity must NOT be an
// administrator, and ARM has no resource for an ordinary Entra role, so the deploy workflow
// creates it with pgaadauth_create_principal_with_oid, signed in as this administrator to the
// postgres database (the pgaadauth_* functions exist only there). See docs/deploy.md.

@export()
@description('A range of client addresses allowed through the server firewall.')
type firewallRule = {
  @description('Rule name: letters, digits, - and _.')
  name: string

  @description('First IPv4 address of the range.')
  startIpAddress: string

  @description('Last IPv4 address of the range.')
  endIpAddress: string
}

@description('Name of the server (becomes <name>.postgres.database.azure.com).')
param name string

@description('Azure region of the server.')
param location string

@description('Tags applied to the server.')
param tags object

@description('PostgreSQL major version.')
param version string

@description('Compute SKU name, e.g. Standard_D2ds_v5.')
param skuName string

@description('Compute tier; Burstable is excluded because the built-in PgBouncer is not available on it.')
@allowed([
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string

@description('Storage size in GB.')
param storageSizeGB int

@description('Days of point-in-time-restore backups (7-35).')
@minValue(7)
@maxValue(35)
param backupRetentionDays int

@description('True to keep backups geo-redundant (can only be chosen when the server is created).')
param geoRedundantBackup bool

@description('True for a zone-redundant high-availability standby.')
param zoneRedundantHa bool

@description('True to also allow password sign-in for the local administrator below (Entra sign-in is always on).')
param passwordAuth bool

@description('Local administrator login, used only when passwordAuth is true.')
param adminLogin string

@description('Local administrator password, used only when passwordAuth is true.')
@secure()
param adminPassword string

@description('Object id of the Microsoft Entra administrator (user, group or service principal).')
param entraAdminObjectId string

@description('Name of the Microsoft Entra administrator: a user principal name, or a group or service principal display name. It is the user name migrations sign in with.')
param entraAdminPrincipalName string

@description('Kind of the Microsoft Entra administrator.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param entraAdminPrincipalType string

@description('Name of the application database.')
param databaseName string

@description('True to accept connections on the public endpoint (firewalled); false when only a private endpoint serves the server.')
param publicNetworkAccess bool

@description('Client address ranges allowed on the public endpoint.')
param firewallRules firewallRule[]

@description('True to add the rule that admits connections from any Azure service (0.0.0.0); needed for Flex Consumption without VNet integration, whose outbound addresses are not fixed.')
param allowAzureServices bool

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    administratorLogin: passwordAuth ? adminLogin : null
    administratorLoginPassword: passwordAuth ? adminPassword : null
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: passwordAuth ? 'Enabled' : 'Disabled'
      tenantId: tenant().tenantId
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: backupRetentionDays
      geoRedundantBackup: geoRedundantBackup ? 'Enabled' : 'Disabled'
    }
    highAvailability: {
      mode: zoneRedundantHa ? 'ZoneRedundant' : 'Disabled'
    }
    network: {
      publicNetworkAccess: publicNetworkAccess ? 'Enabled' : 'Disabled'
    }
  }
}

// The server accepts one control-plane change at a time ("ServerIsBusy" otherwise), so every
// child below waits for the previous one.
resource entraAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: entraAdminObjectId
  properties: {
    principalName: entraAdminPrincipalName
    principalType: entraAdminPrincipalType
    tenantId: tenant().tenantId
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
  dependsOn: [
    entraAdmin
  ]
}

// The app connects to PgBouncer on port 6432; migrations go straight to PostgreSQL on 5432.
resource pgbouncerEnabled 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'pgbouncer.enabled'
  properties: {
    value: 'true'
    source: 'user-override'
  }
  dependsOn: [
    database
  ]
}

// Transaction pooling: a server connection serves one transaction, then the next client. The app
// keeps no session state (its RLS context is set_config(..., true), local to the transaction).
resource pgbouncerPoolMode 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'pgbouncer.pool_mode'
  properties: {
    value: 'transaction'
    source: 'user-override'
  }
  dependsOn: [
    pgbouncerEnabled
  ]
}

var allRules = concat(
  firewallRules,
  allowAzureServices
    ? [
        {
          name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
          startIpAddress: '0.0.0.0'
          endIpAddress: '0.0.0.0'
        }
      ]
    : []
)

@batchSize(1)
resource rules 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = [
  for rule in (publicNetworkAccess ? allRules : []): {
    parent: server
    name: rule.name
    properties: {
      startIpAddress: rule.startIpAddress
      endIpAddress: rule.endIpAddress
    }
    dependsOn: [
      pgbouncerPoolMode
    ]
  }
]

@description('Name of the server.')
output name string = server.name

@description('Resource id of the server.')
output id string = server.id

@description('Fully qualified host name of the server.')
output fqdn string = server.properties.fullyQualifiedDomainName

@description('Name of the application database.')
output databaseName string = database.name

@description('Name the Entra administrator signs in with.')
output entraAdminPrincipalName string = entraAdminPrincipalName
