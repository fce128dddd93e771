// The one identity the function app runs as: it reads host storage, writes audit archives and
// signs in to PostgreSQL. User-assigned so its name (the database role) and client id are known
// before the app exists and survive the app being recreated.

@description('Name of the user-assigned managed identity; it is also the PostgreSQL role name the app signs in as.')
param name string

@description('Azure region of the identity.')
param location string

@description('Tags applied to the identity.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

@description('Resource id of the identity.')
output id string = identity.id

@description('Name of the identity (the PostgreSQL role name).')
output name string = identity.name

@description('Client (application) id: what AZURE_CLIENT_ID and the __clientId settings name.')
output clientId string = identity.properties.clientId

@description('Object (principal) id: what role assignments and pgaadauth_create_principal_with_oid take.')
output principalId string = identity.properties.principalId
